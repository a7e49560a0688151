//! Cron locks in a MySQL / MariaDB table, with the semantics of the PostgreSQL locks
//! (`core::postgres::cron`) and so of the Redis ones: one row per job, an atomic acquire that
//! follows the tick rule of `core::cron_lock`, release/renew checked against this adapter's own
//! instance id, and a fencing token that survives releases (rows are never deleted on release).
//!
//! The acquire is one InnoDB transaction: `SELECT … FOR UPDATE` locks the job's row (a job never
//! seen gets a free row first, `INSERT … ON DUPLICATE KEY UPDATE` outside the transaction), the
//! decision is [`decide`] — the rule of the PostgreSQL statement, computed with
//! [`same_tick_window`] itself — and one `UPDATE` takes the row or marks a skipped tick before
//! `COMMIT`. Concurrent acquirers of a job queue on the row lock, so exactly one sees it free.
//! Expiry uses the database clock (`NOW(3)` of the locking read, in UTC); ticks come from the
//! callers' clocks (see `core::cron_lock`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, TxOpts};

use crate::core::cron_lock::{
    lease_ms, now_ms, same_tick_window, Acquisition, CronLock, LeaseBook, TickRequest, LEASE_MS, TICK_RESOLUTION_MS,
};
use crate::error::{AdapterError, Result};

/// The same default table name as PostgreSQL's.
pub const DEFAULT_TABLE: &str = crate::core::postgres::cron::DEFAULT_TABLE;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of `job_name` (VARBINARY: compared byte for byte, case and trailing spaces significant).
pub const MAX_JOB_NAME_BYTES: usize = 512;
/// Bytes of `instance_id` and `lock_id`.
pub const MAX_ID_BYTES: usize = 255;
/// Connections per adapter (acquires of different jobs, lease renewals) unless the URL sets
/// `pool_min`/`pool_max`.
const POOL_SIZE: usize = 4;
/// `NOW(3)` is fixed for the whole statement; the session is in UTC (see `Opts`), so
/// `UNIX_TIMESTAMP` has no daylight-saving fold.
const NOW_MS: &str = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)";

/// Validates `name` or `database.name` and returns it quoted with backticks. Never splices
/// unchecked text into SQL.
pub fn quote_table_name(name: &str) -> Result<String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 {
        return Err(AdapterError::config("tableName", "must be `table` or `database.table`"));
    }
    let mut out = Vec::new();
    for p in parts {
        let ok = !p.is_empty()
            && p.len() <= 64
            && p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(AdapterError::config(
                "tableName",
                "must be a SQL identifier: letters, digits and _ (not starting with a digit), at most 64 characters, optionally database-qualified",
            ));
        }
        out.push(format!("`{p}`"));
    }
    Ok(out.join("."))
}

/// Splits our own `connect_timeout` (seconds, as in PostgreSQL URLs) off the URL's query, since
/// mysql_async rejects parameters it does not know. Never echoes the URL.
pub fn split_connect_timeout(url: &str) -> Result<(String, Duration)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), DEFAULT_CONNECT_TIMEOUT));
    };
    let mut keep = Vec::new();
    let mut timeout = DEFAULT_CONNECT_TIMEOUT;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("connect_timeout", v)) => {
                let secs: u64 = v.parse().ok().filter(|s| (1..=3600).contains(s)).ok_or_else(|| {
                    AdapterError::config(
                        "connectionString",
                        "connect_timeout must be a whole number of seconds between 1 and 3600",
                    )
                })?;
                timeout = Duration::from_secs(secs);
            }
            _ => keep.push(pair),
        }
    }
    let url = if keep.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", keep.join("&"))
    };
    Ok((url, timeout))
}

fn classify(e: mysql_async::Error) -> AdapterError {
    use mysql_async::{DriverError, Error as E};
    match e {
        // access denied (user, database, no password / plugin, host), auth protocol not supported
        E::Server(s) if matches!(s.code, 1044 | 1045 | 1130 | 1251 | 1698) => {
            AdapterError::Auth(format!("MySQL rejected the credentials: {}", s.message))
        }
        E::Server(s) => AdapterError::Backend(format!("MySQL error {} ({}): {}", s.code, s.state, s.message)),
        E::Io(io) => AdapterError::Connect(format!("cannot reach MySQL: {io}")),
        E::Driver(DriverError::PoolDisconnected) => AdapterError::Closed("the adapter was shut down".into()),
        E::Driver(DriverError::ConnectionClosed) => {
            AdapterError::Connect("cannot reach MySQL: the connection closed".into())
        }
        E::Driver(d) => AdapterError::Backend(format!("MySQL driver error: {d}")),
        E::Url(u) => AdapterError::config("connectionString", format!("not a valid MySQL URL: {u}")),
        E::Other(o) => AdapterError::Connect(format!("cannot reach MySQL: {o}")),
    }
}

struct Sql {
    create: String,
    seed: String,
    lock_row: String,
    take: String,
    mark_skipped: String,
    release: String,
    renew: String,
    active: String,
    shutdown: String,
    purge: String,
}

impl Sql {
    fn new(t: &str) -> Sql {
        Sql {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                   job_name VARBINARY({MAX_JOB_NAME_BYTES}) NOT NULL PRIMARY KEY,
                   lock_id VARBINARY({MAX_ID_BYTES}) NOT NULL,
                   instance_id VARBINARY({MAX_ID_BYTES}) NOT NULL,
                   acquired_at BIGINT NOT NULL,
                   expires_at BIGINT NOT NULL,
                   fencing_token BIGINT NOT NULL DEFAULT 1,
                   released_at BIGINT NULL,
                   tick BIGINT NULL,
                   exact_tick BOOLEAN NOT NULL DEFAULT FALSE,
                   period BIGINT NULL,
                   skipped_tick BIGINT NULL) ENGINE=InnoDB"
            ),
            // a free row for a job never seen (expired, unreleased, token 0: the first taker's
            // token is the current time in ms, as a new PostgreSQL row's)
            seed: format!(
                "INSERT INTO {t} (job_name, lock_id, instance_id, acquired_at, expires_at, fencing_token)
                 VALUES (?, '', '', 0, 0, 0) ON DUPLICATE KEY UPDATE job_name = job_name"
            ),
            lock_row: format!(
                "SELECT instance_id, acquired_at, expires_at, fencing_token, released_at, tick, period, skipped_tick,
                        {NOW_MS}
                 FROM {t} WHERE job_name = ? FOR UPDATE"
            ),
            take: format!(
                "UPDATE {t} SET lock_id = ?, instance_id = ?, acquired_at = ?, expires_at = ?, fencing_token = ?,
                   released_at = NULL, tick = ?, exact_tick = ?, period = ?, skipped_tick = NULL
                 WHERE job_name = ?"
            ),
            mark_skipped: format!("UPDATE {t} SET skipped_tick = ? WHERE job_name = ?"),
            release: format!(
                "UPDATE {t} SET released_at = {NOW_MS}, expires_at = {NOW_MS}
                 WHERE job_name = ? AND lock_id = ? AND instance_id = ? AND released_at IS NULL
                   AND expires_at > {NOW_MS}"
            ),
            renew: format!(
                "UPDATE {t} SET expires_at = {NOW_MS} + ?
                 WHERE job_name = ? AND lock_id = ? AND instance_id = ? AND released_at IS NULL
                   AND expires_at > {NOW_MS}"
            ),
            active: format!(
                "SELECT job_name, instance_id, acquired_at, expires_at FROM {t}
                 WHERE released_at IS NULL AND expires_at > {NOW_MS} ORDER BY job_name"
            ),
            // frees the job for anyone (an interrupted run is not a finished tick): expired, not released
            shutdown: format!(
                "UPDATE {t} SET expires_at = {NOW_MS}
                 WHERE instance_id = ? AND released_at IS NULL AND expires_at > {NOW_MS}"
            ),
            // rows of jobs not seen for a day are garbage; tokens stay monotonic without them
            // because a new row's first token is the current time in ms
            // a seeded row (expires_at 0, about to be taken by the replica that inserted it) is never purged:
            // 20 replicas starting together each purge on their first acquire
            purge: format!("DELETE FROM {t} WHERE expires_at > 0 AND expires_at < {NOW_MS} - 86400000"),
        }
    }
}

/// A job's row as the locking read found it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockRow {
    /// `instance_id` is this adapter's.
    pub mine: bool,
    pub acquired_at: i64,
    pub expires_at: i64,
    pub fencing_token: i64,
    pub released_at: Option<i64>,
    pub tick: Option<i64>,
    pub period: Option<u64>,
    pub skipped_tick: Option<i64>,
}

/// What the acquire transaction does with the locked row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Take it with this token; `period` is the job's shortest known period from now on.
    Take {
        fencing_token: i64,
        period: Option<u64>,
    },
    /// Refused, and the first call of a later tick while the job still runs: mark it.
    Skip {
        running_tick: i64,
    },
    Refuse,
}

/// The smaller of two optional periods, ignoring unknown ones (PostgreSQL's `LEAST`).
fn shortest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The tick rule of `core::cron_lock` for one row at the database time `now` (the PostgreSQL
/// statement's `WHERE` and its `mark_skipped` follow-up, in Rust): an unreleased row is free once
/// expired; a released one to the instance that released it, or to a tick at least the same-tick
/// window after the row's tick. A refused call of a later tick while the job runs is a skip,
/// reported once per tick (the row remembers the last skipped tick).
pub fn decide(row: &LockRow, req: &TickRequest, now: i64, cap: u64) -> Decision {
    // rows without a tick: their acquisition time floored to the second
    let row_tick = row
        .tick
        .unwrap_or_else(|| row.acquired_at.div_euclid(TICK_RESOLUTION_MS as i64) * TICK_RESOLUTION_MS as i64);
    let period = shortest(req.period, row.period);
    let w = same_tick_window(period, req.exact, cap) as i64;
    let since = req.tick.saturating_sub(row_tick);
    let free = match row.released_at {
        None => row.expires_at <= now,
        Some(_) => row.mine || since >= w,
    };
    if free {
        return Decision::Take {
            fencing_token: row.fencing_token.saturating_add(1).max(now),
            period,
        };
    }
    let running = row.released_at.is_none() && row.expires_at > now;
    let new_skip = row.skipped_tick.is_none_or(|s| req.tick.saturating_sub(s).abs() >= w);
    if running && w > 0 && since >= w && new_skip {
        Decision::Skip { running_tick: row_tick }
    } else {
        Decision::Refuse
    }
}

type RowTuple = (
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

pub struct MySqlCronLocks {
    pool: Pool,
    connect_timeout: Duration,
    sql: Arc<Sql>,
    instance_id: String,
    release_guard_ms: u64,
    table_ready: AtomicBool,
    create_lock: tokio::sync::Mutex<()>,
    closed: AtomicBool,
    acquisitions: AtomicU64,
    leases: Arc<LeaseBook>,
}

fn check_id(value: &str, field: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(AdapterError::config(
            field,
            format!("must be 1 to {MAX_ID_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_job(job: &str) -> Result<()> {
    if job.is_empty() || job.len() > MAX_JOB_NAME_BYTES {
        return Err(AdapterError::config(
            "jobName",
            format!("must be 1 to {MAX_JOB_NAME_BYTES} bytes (UTF-8) for MySQL"),
        ));
    }
    Ok(())
}

/// A pooled connection within `timeout`, else MOTIA_TIMEOUT.
async fn get_conn(pool: &Pool, timeout: Duration) -> Result<Conn> {
    match tokio::time::timeout(timeout, pool.get_conn()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(AdapterError::Timeout(format!(
            "could not connect to MySQL within {} ms",
            timeout.as_millis()
        ))),
    }
}

impl MySqlCronLocks {
    pub fn new(connection_string: &str, table: &str, instance_id: String, release_guard_ms: u64) -> Result<Self> {
        let (url, connect_timeout) = split_connect_timeout(connection_string)?;
        let opts = Opts::from_url(&url).map_err(|e| match e {
            // these name a parameter, never the credentials
            mysql_async::UrlError::UnknownParameter { .. }
            | mysql_async::UrlError::InvalidParamValue { .. }
            | mysql_async::UrlError::FeatureRequired { .. }
            | mysql_async::UrlError::InvalidPoolConstraints { .. } => AdapterError::config(
                "connectionString",
                format!("not a valid MySQL URL: {e} (TLS is not supported)"),
            ),
            _ => AdapterError::config(
                "connectionString",
                "not a valid MySQL URL (mysql://user:pass@host:port/database)",
            ),
        })?;
        if opts.ssl_opts().is_some() {
            return Err(AdapterError::config(
                "connectionString",
                "TLS (require_ssl) is not supported by MySqlCronAdapter in this release",
            ));
        }
        check_id(&instance_id, "instanceId")?;
        let user_pool = url.contains("pool_min=") || url.contains("pool_max=");
        let mut pool_opts = opts.pool_opts().clone().with_reset_connection(false); // keeps the statement cache
        if !user_pool {
            if let Some(c) = PoolConstraints::new(POOL_SIZE, POOL_SIZE) {
                pool_opts = pool_opts.with_constraints(c);
            }
        }
        let opts = OptsBuilder::from_opts(opts)
            .client_found_rows(true) // affected rows = matched rows
            .init(vec!["SET time_zone = '+00:00'"])
            .pool_opts(pool_opts);
        Ok(MySqlCronLocks {
            pool: Pool::new(opts),
            connect_timeout,
            sql: Arc::new(Sql::new(&quote_table_name(table)?)),
            instance_id,
            release_guard_ms,
            table_ready: AtomicBool::new(false),
            create_lock: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
            acquisitions: AtomicU64::new(0),
            leases: Arc::new(LeaseBook::default()),
        })
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// A pooled connection, creating the table on first use.
    async fn conn(&self) -> Result<Conn> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AdapterError::Closed("the adapter was shut down".into()));
        }
        let mut conn = get_conn(&self.pool, self.connect_timeout).await?;
        if !self.table_ready.load(Ordering::Acquire) {
            let _once = self.create_lock.lock().await;
            if !self.table_ready.load(Ordering::Acquire) {
                conn.query_drop(&self.sql.create).await.map_err(classify)?;
                self.table_ready.store(true, Ordering::Release);
            }
        }
        Ok(conn)
    }

    pub async fn try_acquire(&self, job: &str, ttl_ms: u64, tick: TickRequest) -> Result<Acquisition> {
        check_job(job)?;
        let mut conn = self.conn().await?;
        if self.acquisitions.fetch_add(1, Ordering::Relaxed).is_multiple_of(256) {
            let _ = conn.query_drop(&self.sql.purge).await;
        }
        // the row is seeded when missing, then read again with a locking read
        for _ in 0..3 {
            let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(classify)?;
            let found: Option<RowTuple> = tx.exec_first(&self.sql.lock_row, (job,)).await.map_err(classify)?;
            let Some((
                instance_id,
                acquired_at,
                expires_at,
                fencing_token,
                released_at,
                row_tick,
                period,
                skipped_tick,
                now,
            )) = found
            else {
                tx.rollback().await.map_err(classify)?;
                conn.exec_drop(&self.sql.seed, (job,)).await.map_err(classify)?;
                continue;
            };
            let row = LockRow {
                mine: instance_id == self.instance_id,
                acquired_at,
                expires_at,
                fencing_token,
                released_at,
                tick: row_tick,
                period: period.map(|p| p.max(0) as u64),
                skipped_tick,
            };
            match decide(&row, &tick, now, self.release_guard_ms) {
                Decision::Take { fencing_token, period } => {
                    let lock_id = uuid::Uuid::new_v4().to_string();
                    tx.exec_drop(
                        &self.sql.take,
                        (
                            &lock_id,
                            &self.instance_id,
                            now,
                            now + lease_ms(ttl_ms) as i64,
                            fencing_token,
                            tick.tick,
                            tick.exact,
                            period.map(|p| p as i64),
                            job,
                        ),
                    )
                    .await
                    .map_err(classify)?;
                    tx.commit().await.map_err(classify)?;
                    let lock = CronLock {
                        job_name: job.to_string(),
                        lock_id,
                        acquired_at: now,
                        expires_at: now + ttl_ms as i64,
                        instance_id: self.instance_id.clone(),
                        tick: (!tick.exact).then_some(tick.tick),
                        scheduled_at: tick.exact.then_some(tick.tick),
                        period,
                        fencing_token: Some(fencing_token),
                        released_at: None,
                    };
                    if ttl_ms > LEASE_MS {
                        self.keep_leased(&lock, lock.expires_at);
                    }
                    return Ok(Acquisition::Acquired(lock));
                }
                Decision::Skip { running_tick } => {
                    tx.exec_drop(&self.sql.mark_skipped, (tick.tick, job))
                        .await
                        .map_err(classify)?;
                    tx.commit().await.map_err(classify)?;
                    return Ok(Acquisition::Skipped { running_tick });
                }
                Decision::Refuse => {
                    tx.rollback().await.map_err(classify)?;
                    return Ok(Acquisition::Refused);
                }
            }
        }
        Err(AdapterError::Backend(format!(
            "MySQL: the lock row of job {job:?} could not be created"
        )))
    }

    /// Holds `lock` as a lease until `until`, renewed by the adapter's keeper task (if MySQL is
    /// unreachable, the lease lapses within one lease: see `core::cron_lock::LeaseBook`).
    fn keep_leased(&self, lock: &CronLock, until: i64) {
        let (pool, sql, timeout) = (self.pool.clone(), self.sql.clone(), self.connect_timeout);
        let (job, lock_id, instance_id) = (lock.job_name.clone(), lock.lock_id.clone(), self.instance_id.clone());
        self.leases.keep(&lock.lock_id, until, move |px| {
            let (pool, sql) = (pool.clone(), sql.clone());
            let (job, lock_id, instance_id) = (job.clone(), lock_id.clone(), instance_id.clone());
            async move {
                let mut conn = get_conn(&pool, timeout).await?;
                conn.exec_drop(&sql.renew, (px as i64, &job, &lock_id, &instance_id))
                    .await
                    .map_err(classify)?;
                Ok(conn.affected_rows() > 0)
            }
        });
    }

    /// Releases a lock this instance owns; the row stays as the record of its tick.
    pub async fn release(&self, lock: &CronLock) -> Result<bool> {
        self.leases.forget(&lock.lock_id);
        let mut conn = self.conn().await?;
        conn.exec_drop(&self.sql.release, (&lock.job_name, &lock.lock_id, &self.instance_id))
            .await
            .map_err(classify)?;
        Ok(conn.affected_rows() > 0)
    }

    pub async fn renew(&self, lock: &CronLock, ttl_ms: u64) -> Result<bool> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            &self.sql.renew,
            (
                lease_ms(ttl_ms) as i64,
                &lock.job_name,
                &lock.lock_id,
                &self.instance_id,
            ),
        )
        .await
        .map_err(classify)?;
        if conn.affected_rows() == 0 {
            self.leases.forget(&lock.lock_id);
            return Ok(false);
        }
        drop(conn);
        if ttl_ms > LEASE_MS {
            self.keep_leased(lock, now_ms() + ttl_ms as i64);
        } else {
            self.leases.forget(&lock.lock_id);
        }
        Ok(true)
    }

    pub async fn active_locks(&self) -> Result<String> {
        let mut conn = self.conn().await?;
        let rows: Vec<(String, String, i64, i64)> = conn.exec(&self.sql.active, ()).await.map_err(classify)?;
        let out: Vec<serde_json::Value> = rows
            .into_iter()
            .map(|(job, instance, acquired_at, expires_at)| {
                serde_json::json!({
                    "jobName": job,
                    "instanceId": instance,
                    "acquiredAt": acquired_at,
                    "expiresAt": expires_at,
                })
            })
            .collect();
        Ok(serde_json::Value::Array(out).to_string())
    }

    pub async fn ping(&self) -> Result<bool> {
        let mut conn = self.conn().await?;
        conn.ping().await.map_err(classify)?;
        Ok(true)
    }

    /// Frees this instance's unreleased locks, then closes the pool.
    pub async fn shutdown(&self) -> Result<u64> {
        self.leases.clear();
        let n = match self.conn().await {
            Ok(mut conn) => {
                let r = conn
                    .exec_drop(&self.sql.shutdown, (&self.instance_id,))
                    .await
                    .map_err(classify)
                    .map(|_| conn.affected_rows());
                drop(conn);
                r
            }
            Err(AdapterError::Closed(_)) => Ok(0),
            Err(e) => Err(e),
        };
        if !self.closed.swap(true, Ordering::SeqCst) {
            // waits for pooled connections to come back (lease keepers stop at their next beat)
            let _ = tokio::time::timeout(Duration::from_secs(5), self.pool.clone().disconnect()).await;
        }
        n
    }
}

impl crate::core::cron_lock::CronLocks for MySqlCronLocks {
    fn try_acquire(
        &self,
        job: &str,
        ttl_ms: u64,
        tick: TickRequest,
    ) -> impl std::future::Future<Output = Result<Acquisition>> + Send {
        MySqlCronLocks::try_acquire(self, job, ttl_ms, tick)
    }
    fn release(&self, lock: &CronLock) -> impl std::future::Future<Output = Result<bool>> + Send {
        MySqlCronLocks::release(self, lock)
    }
    fn renew(&self, lock: &CronLock, ttl_ms: u64) -> impl std::future::Future<Output = Result<bool>> + Send {
        MySqlCronLocks::renew(self, lock, ttl_ms)
    }
    fn active_locks(&self) -> impl std::future::Future<Output = Result<String>> + Send {
        MySqlCronLocks::active_locks(self)
    }
    fn ping(&self) -> impl std::future::Future<Output = Result<bool>> + Send {
        MySqlCronLocks::ping(self)
    }
    async fn shutdown(&self) -> Result<()> {
        // database down: held locks simply expire by their TTL
        let _ = MySqlCronLocks::shutdown(self).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> LockRow {
        LockRow {
            mine: false,
            acquired_at: 10_000,
            expires_at: 310_000,
            fencing_token: 7,
            released_at: None,
            tick: Some(10_000),
            period: None,
            skipped_tick: None,
        }
    }

    fn est(tick: i64, period: Option<u64>) -> TickRequest {
        TickRequest {
            tick,
            exact: false,
            period,
        }
    }

    fn exact(tick: i64) -> TickRequest {
        TickRequest {
            tick,
            exact: true,
            period: None,
        }
    }

    #[test]
    fn table_names_are_validated_and_quoted_with_backticks() {
        assert_eq!(quote_table_name("motia_cron_locks").unwrap(), "`motia_cron_locks`");
        assert_eq!(quote_table_name("ops.locks_2").unwrap(), "`ops`.`locks_2`");
        assert!(quote_table_name(&"x".repeat(64)).is_ok());
        for bad in [
            "",
            "1abc",
            "a-b",
            "x; DROP TABLE y",
            "a.b.c",
            "`q`",
            "a b",
            "a.",
            &"x".repeat(65),
        ] {
            let e = quote_table_name(bad).unwrap_err();
            assert_eq!(e.code(), "MOTIA_CONFIG", "{bad}");
        }
    }

    #[test]
    fn statements_use_the_quoted_table_and_one_clock() {
        let sql = Sql::new("`db`.`t`");
        for s in [
            &sql.create,
            &sql.seed,
            &sql.lock_row,
            &sql.take,
            &sql.mark_skipped,
            &sql.release,
            &sql.renew,
            &sql.active,
            &sql.shutdown,
            &sql.purge,
        ] {
            assert!(s.contains("`db`.`t`"), "{s}");
        }
        assert!(sql.lock_row.ends_with("FOR UPDATE"));
        // a just-seeded row (expires_at 0) is never purged from under the replica that seeded it
        assert!(sql.purge.contains("expires_at > 0 AND"), "{}", sql.purge);
        assert!(sql.create.contains("ENGINE=InnoDB"));
        assert!(sql.renew.contains(&format!("SET expires_at = {NOW_MS} + ?")));
        // ownership is checked against the id this adapter passes, not the lock object's
        for s in [&sql.release, &sql.renew] {
            assert!(s.contains("instance_id = ? AND released_at IS NULL"), "{s}");
        }
        assert_eq!(sql.take.matches('?').count(), 9);
    }

    #[test]
    fn connect_timeout_is_ours_and_removed_from_the_url() {
        let (url, t) = split_connect_timeout("mysql://u:p@h:3306/db").unwrap();
        assert_eq!((url.as_str(), t), ("mysql://u:p@h:3306/db", DEFAULT_CONNECT_TIMEOUT));
        let (url, t) = split_connect_timeout("mysql://h/db?connect_timeout=3&pool_max=2").unwrap();
        assert_eq!((url.as_str(), t), ("mysql://h/db?pool_max=2", Duration::from_secs(3)));
        let (url, _) = split_connect_timeout("mysql://h/db?connect_timeout=3").unwrap();
        assert_eq!(url, "mysql://h/db");
        for bad in ["0", "x", "-1", "99999"] {
            let e = split_connect_timeout(&format!("mysql://u:s3cret@h/db?connect_timeout={bad}")).unwrap_err();
            assert_eq!(e.code(), "MOTIA_CONFIG");
            assert!(!e.js_message().contains("s3cret"));
        }
    }

    #[test]
    fn bad_urls_and_ids_are_config_errors_that_do_not_echo_the_password() {
        for url in [
            "mysql://u:s3cret@h:notaport/db",
            "postgres://u:s3cret@h/db",
            "mysql://u:s3cret@h/db?bogus=1",
            "mysql://u:s3cret@h/db?require_ssl=true",
        ] {
            let e = MySqlCronLocks::new(url, DEFAULT_TABLE, "i".into(), 0)
                .err()
                .expect("must fail");
            assert_eq!(e.code(), "MOTIA_CONFIG", "{url}");
            assert!(!e.js_message().contains("s3cret"), "{}", e.js_message());
            assert!(e.js_message().contains("connectionString"));
        }
        let e = MySqlCronLocks::new("mysql://h/db", DEFAULT_TABLE, "x".repeat(256), 0)
            .err()
            .expect("must fail");
        assert!(e.js_message().contains("instanceId"));
        assert!(MySqlCronLocks::new("mysql://h/db", "a;b", "i".into(), 0).is_err());
        assert!(check_job(&"j".repeat(MAX_JOB_NAME_BYTES)).is_ok());
        assert!(check_job(&"j".repeat(MAX_JOB_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn a_new_row_is_free_and_its_token_is_the_time() {
        let seeded = LockRow {
            acquired_at: 0,
            expires_at: 0,
            fencing_token: 0,
            tick: None,
            ..row()
        };
        assert_eq!(
            decide(&seeded, &est(1_000_000, Some(5000)), 1_000_123, 5000),
            Decision::Take {
                fencing_token: 1_000_123,
                period: Some(5000)
            }
        );
    }

    #[test]
    fn a_held_row_refuses_everyone_until_it_expires() {
        let r = row();
        assert_eq!(decide(&r, &est(10_000, None), 10_500, 5000), Decision::Refuse);
        assert_eq!(
            decide(&LockRow { mine: true, ..r }, &est(10_000, None), 10_500, 5000),
            Decision::Refuse
        );
        assert_eq!(
            decide(&r, &est(400_000, None), 310_000, 5000),
            Decision::Take {
                fencing_token: 310_000,
                period: None
            }
        );
        // tokens never go back, whatever the clock
        assert_eq!(
            decide(
                &LockRow {
                    fencing_token: 9_999_999,
                    ..r
                },
                &est(400_000, None),
                310_000,
                5000
            ),
            Decision::Take {
                fencing_token: 10_000_000,
                period: None
            }
        );
    }

    #[test]
    fn a_released_row_refuses_only_its_own_tick_to_others() {
        let r = LockRow {
            released_at: Some(10_100),
            expires_at: 10_100,
            period: Some(5000),
            ..row()
        };
        // window = min(period 5000, caller's) within [1000, cap]
        assert_eq!(decide(&r, &est(10_000, None), 10_200, 5000), Decision::Refuse);
        assert_eq!(decide(&r, &est(14_000, None), 14_000, 5000), Decision::Refuse);
        assert!(matches!(
            decide(&r, &est(15_000, None), 15_000, 5000),
            Decision::Take { .. }
        ));
        // the caller knows a shorter period: the window narrows
        assert_eq!(decide(&r, &est(11_000, Some(2000)), 11_000, 5000), Decision::Refuse);
        assert!(matches!(
            decide(&r, &est(12_000, Some(2000)), 12_000, 5000),
            Decision::Take { period: Some(2000), .. }
        ));
        // the releaser takes it again at once
        assert!(matches!(
            decide(&LockRow { mine: true, ..r }, &est(10_000, None), 10_200, 5000),
            Decision::Take { .. }
        ));
        // exact ticks: any later tick, never the same one or an older one
        assert_eq!(decide(&r, &exact(10_000), 10_200, 5000), Decision::Refuse);
        assert!(matches!(
            decide(&r, &exact(10_001), 10_200, 5000),
            Decision::Take { .. }
        ));
        assert_eq!(decide(&r, &exact(9_000), 10_200, 5000), Decision::Refuse);
        // releaseGuard 0: release frees the job (for the same or a later tick)
        assert!(matches!(
            decide(&r, &est(10_000, None), 10_200, 0),
            Decision::Take { .. }
        ));
        // rows without a tick use their acquisition time floored to the second
        let old = LockRow {
            tick: None,
            acquired_at: 10_999,
            ..r
        };
        assert_eq!(decide(&old, &est(14_000, None), 14_000, 5000), Decision::Refuse);
        assert!(matches!(
            decide(&old, &est(15_000, None), 15_000, 5000),
            Decision::Take { .. }
        ));
    }

    #[test]
    fn a_later_tick_while_the_job_runs_is_a_skip_reported_once() {
        let r = LockRow {
            tick: Some(1_000_000),
            acquired_at: 1_000_000,
            expires_at: 2_000_000,
            ..row()
        };
        assert_eq!(decide(&r, &exact(1_000_000), 1_000_500, 5000), Decision::Refuse); // same tick
        assert_eq!(
            decide(&r, &exact(1_005_000), 1_005_000, 5000),
            Decision::Skip {
                running_tick: 1_000_000
            }
        );
        let marked = LockRow {
            skipped_tick: Some(1_005_000),
            ..r
        };
        assert_eq!(decide(&marked, &exact(1_005_000), 1_005_000, 5000), Decision::Refuse);
        assert_eq!(
            decide(&marked, &exact(1_010_000), 1_010_000, 5000),
            Decision::Skip {
                running_tick: 1_000_000
            }
        );
        assert_eq!(decide(&r, &exact(1_005_000), 1_005_000, 0), Decision::Refuse);
        // no window, no skips
    }
}
