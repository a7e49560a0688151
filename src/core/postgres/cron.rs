//! Cron locks in a PostgreSQL table (RFC "Example 6"), with the same semantics as the Redis
//! locks: one row per job, `INSERT … ON CONFLICT DO UPDATE … WHERE <tick rule>` as the atomic
//! acquire (the rule of `core::cron_lock`), release/renew checked against this adapter's own
//! instance id, and a fencing token that survives releases (rows are never deleted on release).
//! Expiry uses the database clock; ticks come from the callers' clocks (see `core::cron_lock`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{self, PgSslOptions};
use crate::core::cron_lock::{lease_ms, now_ms, Acquisition, CronLock, LeaseBook, TickRequest, LEASE_MS};
use crate::error::{AdapterError, Result};

pub const DEFAULT_TABLE: &str = "motia_cron_locks";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
// statement_timestamp() is one value for the whole statement (clock_timestamp() would differ between uses)
const NOW_MS: &str = "(extract(epoch from statement_timestamp()) * 1000)::bigint";

/// Validates `name` or `schema.name` and returns it quoted. Never splices unchecked text into SQL.
pub fn quote_table_name(name: &str) -> Result<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 {
        return Err(AdapterError::config("tableName", "must be `table` or `schema.table`"));
    }
    let mut out = Vec::new();
    for p in parts {
        let ok = !p.is_empty()
            && p.len() <= 63
            && p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(AdapterError::config(
                "tableName",
                "must be a SQL identifier: letters, digits and _ (not starting with a digit), at most 63 characters, optionally schema-qualified",
            ));
        }
        out.push(format!("\"{p}\""));
    }
    Ok(out.join("."))
}

fn classify(e: tokio_postgres::Error) -> AdapterError {
    if let Some(code) = e.code() {
        if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            return AdapterError::Auth(format!("PostgreSQL rejected the credentials: {e}"));
        }
    }
    if e.is_closed() || e.as_db_error().is_none() {
        // no server-side error: the connection failed or broke
        let detail = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        return AdapterError::Connect(format!("cannot reach PostgreSQL: {detail}"));
    }
    // `Display` of a server error is only "db error": name the server's message and SQLSTATE
    match e.as_db_error() {
        Some(db) => AdapterError::Backend(format!(
            "PostgreSQL error: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        )),
        None => AdapterError::Backend(format!("PostgreSQL error: {e}")),
    }
}

struct Sql {
    create: String,
    has_tick_columns: String,
    add_tick_columns: String,
    acquire: String,
    mark_skipped: String,
    release: String,
    renew: String,
    active: String,
    shutdown: String,
    purge: String,
}

/// The same-tick window of `core::cron_lock::same_tick_window` in SQL (keep the two in step):
/// `exact`, `period` (the caller's, nullable) and `cap` are parameters, `rec_period` the row's
/// column. `LEAST` ignores NULLs in PostgreSQL, so it is the shorter known period.
fn window_sql(exact: &str, period: &str, cap: &str, rec_period: &str) -> String {
    format!(
        "(CASE WHEN {cap} <= 0 THEN 0 WHEN {exact} THEN 1 \
              WHEN LEAST({period}, {rec_period}) IS NULL THEN 1000 \
              ELSE GREATEST(1000, LEAST(GREATEST({cap}, 1000), LEAST({period}, {rec_period}))) END)"
    )
}

/// The tick a row is for: its estimated or exact tick, or (rows written before ticks existed)
/// its acquisition time floored to the second.
const ROW_TICK: &str = "COALESCE(l.tick, l.acquired_at / 1000 * 1000)";

impl Sql {
    fn new(t: &str) -> Sql {
        let w_acquire = window_sql("$6::boolean", "$7::bigint", "$8::bigint", "l.period");
        let w_skip = window_sql("$3::boolean", "$4::bigint", "$5::bigint", "l.period");
        Sql {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                   job_name TEXT PRIMARY KEY,
                   lock_id TEXT NOT NULL,
                   instance_id TEXT NOT NULL,
                   acquired_at BIGINT NOT NULL,
                   expires_at BIGINT NOT NULL,
                   fencing_token BIGINT NOT NULL DEFAULT 1,
                   released_at BIGINT,
                   tick BIGINT,
                   exact_tick BOOLEAN NOT NULL DEFAULT false,
                   period BIGINT,
                   skipped_tick BIGINT)"
            ),
            has_tick_columns: format!("SELECT tick, exact_tick, period, skipped_tick FROM {t} LIMIT 0"),
            // tables made by earlier releases (ALTER takes an exclusive lock: only when needed)
            add_tick_columns: format!(
                "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS tick BIGINT,
                   ADD COLUMN IF NOT EXISTS exact_tick BOOLEAN NOT NULL DEFAULT false,
                   ADD COLUMN IF NOT EXISTS period BIGINT,
                   ADD COLUMN IF NOT EXISTS skipped_tick BIGINT"
            ),
            acquire: format!(
                "INSERT INTO {t} AS l (job_name, lock_id, instance_id, acquired_at, expires_at, fencing_token,
                                       released_at, tick, exact_tick, period)
                 VALUES ($1, $2, $3, {NOW_MS}, {NOW_MS} + $4::bigint, {NOW_MS}, NULL, $5::bigint, $6::boolean, $7::bigint)
                 ON CONFLICT (job_name) DO UPDATE SET
                   lock_id = EXCLUDED.lock_id, instance_id = EXCLUDED.instance_id,
                   acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at,
                   fencing_token = GREATEST(l.fencing_token + 1, EXCLUDED.fencing_token), released_at = NULL,
                   tick = EXCLUDED.tick, exact_tick = EXCLUDED.exact_tick,
                   period = LEAST(EXCLUDED.period, l.period), skipped_tick = NULL
                 WHERE CASE WHEN l.released_at IS NULL THEN l.expires_at <= EXCLUDED.acquired_at
                            ELSE l.instance_id = EXCLUDED.instance_id
                                 OR EXCLUDED.tick - {ROW_TICK} >= {w_acquire} END
                 RETURNING acquired_at, expires_at, fencing_token, period"
            ),
            // after a refusal: the first call of a later tick while the job still runs marks the
            // row and learns the running tick (so the skip is logged once across the fleet)
            mark_skipped: format!(
                "UPDATE {t} AS l SET skipped_tick = $2::bigint
                 WHERE job_name = $1 AND released_at IS NULL AND expires_at > {NOW_MS}
                   AND {w_skip} > 0 AND $2::bigint - {ROW_TICK} >= {w_skip}
                   AND (skipped_tick IS NULL OR abs($2::bigint - skipped_tick) >= {w_skip})
                 RETURNING {ROW_TICK}"
            ),
            release: format!(
                "UPDATE {t} SET released_at = {NOW_MS}, expires_at = {NOW_MS}
                 WHERE job_name = $1 AND lock_id = $2 AND instance_id = $3 AND released_at IS NULL
                   AND expires_at > {NOW_MS}"
            ),
            renew: format!(
                "UPDATE {t} SET expires_at = {NOW_MS} + $4::bigint
                 WHERE job_name = $1 AND lock_id = $2 AND instance_id = $3 AND released_at IS NULL
                   AND expires_at > {NOW_MS}"
            ),
            active: format!(
                "SELECT job_name, instance_id, acquired_at, expires_at FROM {t}
                 WHERE released_at IS NULL AND expires_at > {NOW_MS} ORDER BY job_name"
            ),
            // frees the job for anyone (an interrupted run is not a finished tick): expired, not released
            shutdown: format!(
                "UPDATE {t} SET expires_at = {NOW_MS}
                 WHERE instance_id = $1 AND released_at IS NULL AND expires_at > {NOW_MS}"
            ),
            // rows of jobs not seen for a day are garbage; tokens stay monotonic without them
            // because a new row starts at the current time in ms
            purge: format!("DELETE FROM {t} WHERE expires_at < {NOW_MS} - 86400000"),
        }
    }
}

pub struct PgCronLocks {
    config: tokio_postgres::Config,
    /// rustls for `sslmode` prefer and above (see `postgres::tls`).
    tls: Option<MakeRustlsConnect>,
    connect_timeout: Duration,
    sql: Sql,
    instance_id: String,
    release_guard_ms: u64,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    closed: std::sync::atomic::AtomicBool,
    acquisitions: std::sync::atomic::AtomicU64,
    leases: Arc<LeaseBook>,
}

impl PgCronLocks {
    pub fn new(
        connection_string: &str,
        ssl: Option<&PgSslOptions>,
        table: &str,
        instance_id: String,
        release_guard_ms: u64,
    ) -> Result<Self> {
        let plan = tls::plan(connection_string, ssl)?;
        let tls = tls::client_config(&plan)?.map(MakeRustlsConnect::new);
        let config = tokio_postgres::Config::from_str(&plan.connection_string).map_err(|_| {
            AdapterError::config(
                "connectionString",
                "not a valid PostgreSQL connection string (postgres://user:pass@host:port/db or key=value)",
            )
        })?;
        let connect_timeout = config.get_connect_timeout().copied().unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        Ok(PgCronLocks {
            config,
            tls,
            connect_timeout,
            sql: Sql::new(&quote_table_name(table)?),
            instance_id,
            release_guard_ms,
            client: tokio::sync::Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
            acquisitions: std::sync::atomic::AtomicU64::new(0),
            leases: Arc::new(LeaseBook::default()),
        })
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The shared client, (re)connecting and creating the table on first use.
    async fn client(&self) -> Result<Arc<Client>> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AdapterError::Closed("the adapter was shut down".into()));
        }
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let timeout = |e: tokio::time::error::Elapsed| {
            let _ = e;
            AdapterError::Timeout(format!(
                "could not connect to PostgreSQL within {} ms",
                self.connect_timeout.as_millis()
            ))
        };
        // the connection future's type depends on the TLS connector: spawn it in each arm
        let client = match &self.tls {
            None => {
                let (client, connection) = tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls))
                    .await
                    .map_err(timeout)?
                    .map_err(classify)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
            }
            Some(tls) => {
                let (client, connection) = tokio::time::timeout(self.connect_timeout, self.config.connect(tls.clone()))
                    .await
                    .map_err(timeout)?
                    .map_err(classify)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client
            }
        };
        // Serialise concurrent table creation across processes (CREATE … IF NOT EXISTS can race).
        let create = format!(
            "SELECT pg_advisory_xact_lock(7125080101); {}",
            self.sql.create.replace('\n', " ")
        );
        client
            .batch_execute(&format!("BEGIN; {create}; COMMIT;"))
            .await
            .map_err(classify)?;
        if let Err(e) = client.simple_query(&self.sql.has_tick_columns).await {
            if e.code() != Some(&SqlState::UNDEFINED_COLUMN) {
                return Err(classify(e));
            }
            client
                .batch_execute(&self.sql.add_tick_columns)
                .await
                .map_err(classify)?;
        }
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    pub async fn try_acquire(&self, job: &str, ttl_ms: u64, tick: TickRequest) -> Result<Acquisition> {
        let client = self.client().await?;
        if self
            .acquisitions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(256)
        {
            let _ = client.execute(&self.sql.purge, &[]).await;
        }
        let lock_id = uuid::Uuid::new_v4().to_string();
        let period = tick.period.map(|p| p as i64);
        let cap = self.release_guard_ms as i64;
        let rows = client
            .query(
                &self.sql.acquire,
                &[
                    &job,
                    &lock_id,
                    &self.instance_id,
                    &(lease_ms(ttl_ms) as i64),
                    &tick.tick,
                    &tick.exact,
                    &period,
                    &cap,
                ],
            )
            .await
            .map_err(classify)?;
        if let Some(row) = rows.first() {
            let acquired_at: i64 = row.get(0);
            let lock = CronLock {
                job_name: job.to_string(),
                lock_id,
                acquired_at,
                expires_at: acquired_at + ttl_ms as i64,
                instance_id: self.instance_id.clone(),
                tick: (!tick.exact).then_some(tick.tick),
                scheduled_at: tick.exact.then_some(tick.tick),
                period: row.get::<_, Option<i64>>(3).map(|p| p as u64),
                fencing_token: Some(row.get(2)),
                released_at: None,
            };
            if ttl_ms > LEASE_MS {
                self.keep_leased(&client, &lock, lock.expires_at);
            }
            return Ok(Acquisition::Acquired(lock));
        }
        let marked = client
            .query(&self.sql.mark_skipped, &[&job, &tick.tick, &tick.exact, &period, &cap])
            .await
            .map_err(classify)?;
        Ok(match marked.first() {
            Some(row) => Acquisition::Skipped {
                running_tick: row.get(0),
            },
            None => Acquisition::Refused,
        })
    }

    /// Holds `lock` as a lease until `until`, renewed by a tokio task on this connection (if the
    /// connection breaks, the lease lapses within one lease: see `core::cron_lock::LEASE_MS`).
    fn keep_leased(&self, client: &Arc<Client>, lock: &CronLock, until: i64) {
        let (client, sql) = (client.clone(), self.sql.renew.clone());
        let (job, lock_id, instance_id) = (lock.job_name.clone(), lock.lock_id.clone(), self.instance_id.clone());
        self.leases.keep(&lock.lock_id, until, move |px| {
            let (client, sql) = (client.clone(), sql.clone());
            let (job, lock_id, instance_id) = (job.clone(), lock_id.clone(), instance_id.clone());
            async move {
                let n = client
                    .execute(&sql, &[&job, &lock_id, &instance_id, &(px as i64)])
                    .await
                    .map_err(classify)?;
                Ok(n > 0)
            }
        });
    }

    /// Releases a lock this instance owns; the row stays as the record of its tick.
    pub async fn release(&self, lock: &CronLock) -> Result<bool> {
        self.leases.forget(&lock.lock_id);
        let client = self.client().await?;
        let n = client
            .execute(&self.sql.release, &[&lock.job_name, &lock.lock_id, &self.instance_id])
            .await
            .map_err(classify)?;
        Ok(n > 0)
    }

    pub async fn renew(&self, lock: &CronLock, ttl_ms: u64) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                &self.sql.renew,
                &[
                    &lock.job_name,
                    &lock.lock_id,
                    &self.instance_id,
                    &(lease_ms(ttl_ms) as i64),
                ],
            )
            .await
            .map_err(classify)?;
        if n == 0 {
            self.leases.forget(&lock.lock_id);
            return Ok(false);
        }
        if ttl_ms > LEASE_MS {
            self.keep_leased(&client, lock, now_ms() + ttl_ms as i64);
        } else {
            self.leases.forget(&lock.lock_id);
        }
        Ok(true)
    }

    pub async fn active_locks(&self) -> Result<String> {
        let client = self.client().await?;
        let rows = client.query(&self.sql.active, &[]).await.map_err(classify)?;
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "jobName": r.get::<_, String>(0),
                    "instanceId": r.get::<_, String>(1),
                    "acquiredAt": r.get::<_, i64>(2),
                    "expiresAt": r.get::<_, i64>(3),
                })
            })
            .collect();
        Ok(serde_json::Value::Array(out).to_string())
    }

    pub async fn ping(&self) -> Result<bool> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(classify)?;
        Ok(true)
    }

    /// Frees this instance's unreleased locks, then closes the connection.
    pub async fn shutdown(&self) -> Result<u64> {
        self.leases.clear();
        let n = match self.client().await {
            Ok(client) => client
                .execute(&self.sql.shutdown, &[&self.instance_id])
                .await
                .map_err(classify),
            Err(AdapterError::Closed(_)) => Ok(0),
            Err(e) => Err(e),
        };
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        *self.client.lock().await = None;
        n
    }
}

impl crate::core::cron_lock::CronLocks for PgCronLocks {
    fn try_acquire(
        &self,
        job: &str,
        ttl_ms: u64,
        tick: TickRequest,
    ) -> impl std::future::Future<Output = Result<Acquisition>> + Send {
        PgCronLocks::try_acquire(self, job, ttl_ms, tick)
    }
    fn release(&self, lock: &CronLock) -> impl std::future::Future<Output = Result<bool>> + Send {
        PgCronLocks::release(self, lock)
    }
    fn renew(&self, lock: &CronLock, ttl_ms: u64) -> impl std::future::Future<Output = Result<bool>> + Send {
        PgCronLocks::renew(self, lock, ttl_ms)
    }
    fn active_locks(&self) -> impl std::future::Future<Output = Result<String>> + Send {
        PgCronLocks::active_locks(self)
    }
    fn ping(&self) -> impl std::future::Future<Output = Result<bool>> + Send {
        PgCronLocks::ping(self)
    }
    async fn shutdown(&self) -> Result<()> {
        // database down: held locks simply expire by their TTL
        let _ = PgCronLocks::shutdown(self).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_validated_and_quoted() {
        assert_eq!(quote_table_name("motia_cron_locks").unwrap(), "\"motia_cron_locks\"");
        assert_eq!(quote_table_name("ops.locks_2").unwrap(), "\"ops\".\"locks_2\"");
        for bad in [
            "",
            "1abc",
            "a-b",
            "x; DROP TABLE y",
            "a.b.c",
            "\"q\"",
            "a b",
            &"x".repeat(64),
        ] {
            let e = quote_table_name(bad).unwrap_err();
            assert_eq!(e.code(), "MOTIA_CONFIG", "{bad}");
        }
    }

    #[test]
    fn bad_connection_string_does_not_echo_it() {
        let e = PgCronLocks::new("postgres://u:s3cret@h:notaport/db", None, DEFAULT_TABLE, "i".into(), 0)
            .err()
            .expect("must fail");
        assert!(!e.js_message().contains("s3cret"));
        assert!(e.js_message().contains("connectionString"));
    }
}
