//! lapin errors mapped to the adapter's error codes.

use crate::error::AdapterError;

/// Maps a lapin error to our codes by its kind and AMQP reply code (never by message text); never
/// includes the URL. 403 ACCESS_REFUSED is `MOTIA_AUTH`; 406 PRECONDITION_FAILED (a declare that
/// disagrees with the broker's queue) is named in the message, which `events::is_permanent` reads.
pub(super) fn classify(e: &lapin::Error) -> AdapterError {
    use lapin::ErrorKind as K;
    let text = e.to_string();
    match e.kind() {
        K::ProtocolError(p) => match p.get_id() {
            403 => AdapterError::Auth(format!("RabbitMQ refused access (403 ACCESS_REFUSED: {text})")),
            406 => AdapterError::Backend(format!(
                "RabbitMQ rejected the topology (406 PRECONDITION_FAILED: {text})"
            )),
            320 | 501..=506 | 541 => AdapterError::Connect(format!("RabbitMQ closed the connection ({text})")),
            code => AdapterError::Backend(format!("RabbitMQ error ({code}: {text})")),
        },
        K::AuthProviderError(_) => AdapterError::Auth(format!("RabbitMQ authentication failed ({text})")),
        K::IOError(_) | K::MissingHeartbeatError | K::InvalidConnectionState(_) | K::RuntimeShutdownError(_) => {
            AdapterError::Connect(format!("cannot reach RabbitMQ ({text})"))
        }
        _ => AdapterError::Backend(format!("RabbitMQ error ({text})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::protocol::{AMQPError, AMQPErrorKind, AMQPHardError, AMQPSoftError};

    fn amqp(kind: AMQPErrorKind) -> lapin::Error {
        lapin::ErrorKind::ProtocolError(AMQPError::new(kind, "reply text".into())).into()
    }

    #[test]
    fn each_reply_code_maps_to_its_error_code() {
        let auth = classify(&amqp(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)));
        assert!(matches!(auth, AdapterError::Auth(_)));
        assert!(crate::core::events::is_permanent(&auth));
        let topo = classify(&amqp(AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)));
        assert!(matches!(topo, AdapterError::Backend(ref m) if m.contains("406 PRECONDITION_FAILED")));
        assert!(crate::core::events::is_permanent(&topo));
        let not_found = classify(&amqp(AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)));
        assert!(matches!(not_found, AdapterError::Backend(_)));
        assert!(!crate::core::events::is_permanent(&not_found));
        let forced = classify(&amqp(AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED)));
        assert!(matches!(forced, AdapterError::Connect(_)));
        let io = classify(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into());
        assert!(matches!(io, AdapterError::Connect(_)));
        assert!(!crate::core::events::is_permanent(&io));
        let hb = classify(&lapin::ErrorKind::MissingHeartbeatError.into());
        assert!(matches!(hb, AdapterError::Connect(_)));
    }
}
