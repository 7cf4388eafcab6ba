//! `stream_record`: the stream-record decoder of the orders table's consumers.
//!
//! The bytes are the Lambda event the `stream-fanout` and `stream-push` functions receive
//! (`aws_lambda_events`' DynamoDB event, as in `events/stream/`). Each record goes the fan-out's
//! way — [`record_events`]: the images decoded by the domain's one decoder, then the events
//! derived and rendered as sent — and the push consumer's: the same decoded change to its
//! [`notifications`]. A status change's replay (`subscribe:order` with `sinceSeq`) is rebuilt
//! from the decoded order too.
//!
//! Asserted: the fan-out skips exactly the records whose images do not decode; every derived
//! event goes to at least one room and is sent as JSON naming it; a push collapses by its order; a replay only has status
//! updates after the asked `seq`.

use aws_lambda_events::dynamodb::Event;
use rnd_domain::OrderRecord;
use rnd_domain::change::decode_change;
use rnd_domain::events::status_updates_since;
use rnd_domain::push::notifications;
use rnd_handlers::fanout::record_events;

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        // Lambda refuses an event it cannot read before any handler runs.
        return;
    };
    for record in &event.records {
        let decoded = decode_change(&record.change.old_image, &record.change.new_image);
        let events = record_events(record);
        assert_eq!(
            events.is_none(),
            decoded.is_err(),
            "the fan-out skips exactly the records that do not decode"
        );
        for outgoing in events.into_iter().flatten() {
            assert!(!outgoing.rooms.is_empty(), "an event goes to some room");
            let sent: serde_json::Value =
                serde_json::from_str(&outgoing.message.to_json()).expect("an event is JSON");
            assert_eq!(sent["event"], outgoing.message.event_name());
        }
        let Ok(Some(change)) = decoded else {
            continue;
        };
        for notification in notifications(&change) {
            assert_eq!(
                notification.data.get("orderId"),
                Some(&notification.collapse_key),
                "a push collapses by its order"
            );
        }
        if let Some(OrderRecord::Order(order)) = &change.new {
            let since = order.seq.saturating_sub(2);
            for update in status_updates_since(order, since).into_iter().flatten() {
                assert!(update.seq > since, "a replay has only what came after");
            }
        }
    }
}
