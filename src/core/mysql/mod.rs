//! MySQL / MariaDB backend (mysql_async, no TLS).

pub mod cron;
