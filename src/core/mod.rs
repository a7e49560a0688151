//! Backend logic with no napi dependency: compiles and unit-tests without Node.

pub mod filter;
pub mod redis;
pub mod tls;
