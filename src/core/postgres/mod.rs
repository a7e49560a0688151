//! PostgreSQL backend (tokio-postgres).

pub mod cron;
pub mod tls;
