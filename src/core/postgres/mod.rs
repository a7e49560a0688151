//! PostgreSQL backend (tokio-postgres).

pub mod cron;
