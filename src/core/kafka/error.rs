//! librdkafka errors mapped to the adapter's error codes.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::AdapterError;

/// Maps librdkafka errors to our codes.
pub fn classify(e: &KafkaError) -> AdapterError {
    let text = e.to_string();
    let code = e.rdkafka_error_code();
    match code {
        Some(RDKafkaErrorCode::MessageTimedOut) | Some(RDKafkaErrorCode::OperationTimedOut) => {
            AdapterError::Timeout(format!("Kafka did not answer in time ({text})"))
        }
        Some(RDKafkaErrorCode::AllBrokersDown) | Some(RDKafkaErrorCode::BrokerTransportFailure) => {
            AdapterError::Connect(format!("cannot reach Kafka ({text})"))
        }
        Some(RDKafkaErrorCode::SaslAuthenticationFailed)
        | Some(RDKafkaErrorCode::Authentication)
        | Some(RDKafkaErrorCode::TopicAuthorizationFailed)
        | Some(RDKafkaErrorCode::GroupAuthorizationFailed) => {
            AdapterError::Auth(format!("Kafka refused access ({text})"))
        }
        _ => match e {
            _ if text.contains("TimedOut") || text.contains("Timed out") => {
                AdapterError::Timeout(format!("Kafka did not answer in time ({text})"))
            }
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => {
                AdapterError::config("rdkafka", format!("librdkafka rejected the configuration ({text})"))
            }
            _ => AdapterError::Backend(format!("Kafka error ({text})")),
        },
    }
}
