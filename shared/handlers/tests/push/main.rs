//! The push consumer, driven by the fixtures in `events/stream/`, on the embedded store and the
//! DynamoDB store on moto, sending with the real FCM v1 adapter to the FCM emulator (Google's
//! token endpoint and `messages:send` on the real wire protocol).

#[path = "../fanout/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../websocket/support.rs"]
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::Event;
use chrono::Utc;
use harness::{batch, event, for_order, stream_fixture};
use rnd_domain::Actor;
use rnd_domain::device::{DeviceId, DeviceRegistration, DeviceToken, Platform};
use rnd_domain::ports::Store;
use rnd_fcm_emulator::{Fault, RunningEmulator};
use rnd_handlers::push::{PushConfig, PushOutcome, push_batch};
use rnd_push_fcm::{FcmSender, ServiceAccount};
use rnd_store_conformance::fixtures::{self, chef, customer, driver, other_customer};
use serde_json::json;

/// The FCM emulator and a sender pointed at it as its development service account.
struct Fcm {
    emulator: RunningEmulator,
    sender: FcmSender,
    config: PushConfig,
}

impl Fcm {
    async fn start() -> Fcm {
        let emulator = rnd_fcm_emulator::start()
            .await
            .expect("the emulator starts");
        let account = ServiceAccount::from_json(&emulator.dev_service_account_json())
            .expect("the development account parses");
        let sender =
            FcmSender::new(account, emulator.base_url(), Duration::from_secs(5)).expect("a sender");
        let config = PushConfig {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..PushConfig::default()
        };
        Fcm {
            emulator,
            sender,
            config,
        }
    }

    async fn run<S: Store + ?Sized>(&self, store: &S, event: &Event) -> PushOutcome {
        push_batch(store, &self.sender, &self.config, event, fixtures::now()).await
    }

    /// `(title, data.event)` of what the device `token` received, oldest first.
    fn received(&self, token: &str) -> Vec<(String, String)> {
        self.emulator
            .messages_to(token)
            .into_iter()
            .map(|m| {
                (
                    m.title.unwrap_or_default(),
                    m.data.get("event").cloned().unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Registers the device `token` for `actor`.
async fn device<S: Store + ?Sized>(store: &S, actor: &Actor, token: &str) -> DeviceId {
    let registration = DeviceRegistration {
        new_id: DeviceId::parse(format!("dev-{}", uuid::Uuid::new_v4().simple())).unwrap(),
        user_id: actor.user_id.clone(),
        token: DeviceToken::parse(token).unwrap(),
        platform: Platform::Android,
        app_version: None,
        locale: None,
    };
    store
        .register_device(&registration, fixtures::now())
        .await
        .expect("register")
        .device
        .device_id
}

async fn a_chef_with_two_devices_gets_a_new_order_on_both<S: Store + 'static>(store: Arc<S>) {
    // GIVEN a chef with a phone and a tablet
    let fcm = Fcm::start().await;
    device(&*store, &chef(), "chef:phone").await;
    device(&*store, &chef(), "chef:tablet").await;
    // WHEN an order is placed
    let outcome = fcm.run(&*store, &batch(&["order-insert"])).await;
    // THEN both got the same high-priority push, with the documented data and collapse key
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(outcome.metrics.sent, 2);
    for token in ["chef:phone", "chef:tablet"] {
        let messages = fcm.emulator.messages_to(token);
        assert_eq!(messages.len(), 1, "{token}");
        let m = &messages[0];
        assert!(
            m.title
                .as_deref()
                .unwrap_or("")
                .starts_with("New order RND-"),
            "{m:?}"
        );
        assert_eq!(m.data["event"], "order:new");
        assert_eq!(m.data["orderId"], "order-1");
        assert_eq!(m.data["status"], "pending");
        assert_eq!(m.data["seq"], "1");
        assert_eq!(m.collapse_key.as_deref(), Some("order-1"));
        assert_eq!(m.apns_collapse_id.as_deref(), Some("order-1"));
        assert!(m.high_priority);
    }
    // AND the access token was fetched once for both
    assert_eq!(fcm.emulator.token_grants(), 1);
}

async fn a_device_fcm_no_longer_knows_is_pruned<S: Store + 'static>(store: Arc<S>) {
    // GIVEN a chef with a phone FCM has forgotten, and a live tablet
    let fcm = Fcm::start().await;
    device(&*store, &chef(), "chef:uninstalled").await;
    device(&*store, &chef(), "chef:tablet").await;
    fcm.emulator.fail("chef:uninstalled", Fault::Unregistered);
    // WHEN an order is placed
    let outcome = fcm.run(&*store, &batch(&["order-insert"])).await;
    // THEN the tablet got it, the forgotten phone was removed, and the batch succeeds
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(outcome.metrics.sent, 1);
    assert_eq!(outcome.metrics.pruned, 1);
    assert_eq!(outcome.metrics.failed.get("unregistered"), Some(&1));
    assert!(
        outcome.failed_pushes.is_empty(),
        "nothing to retry for a pruned device"
    );
    let left: Vec<String> = store
        .devices_of(&chef().user_id, fixtures::now())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.token.as_str().to_owned())
        .collect();
    assert_eq!(left, ["chef:tablet"]);
}

async fn a_throttled_push_is_retried_after_its_retry_after_and_delivered<S: Store + 'static>(
    store: Arc<S>,
) {
    // GIVEN FCM throttling the customer's phone once, asking to retry after a second
    let fcm = Fcm::start().await;
    device(&*store, &customer(), "customer:phone").await;
    fcm.emulator.fail_next(
        "customer:phone",
        Fault::QuotaExceeded {
            retry_after: Some(Duration::from_secs(1)),
        },
        1,
    );
    // WHEN the order is accepted
    let started = std::time::Instant::now();
    let outcome = fcm.run(&*store, &batch(&["order-accepted"])).await;
    // THEN the push was retried once, after the second, and delivered
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(outcome.metrics.retried, 1);
    assert_eq!(outcome.metrics.sent, 1);
    assert_eq!(
        fcm.received("customer:phone"),
        [(
            "Order RND-20260314-0007".to_owned(),
            "order:status_update".to_owned()
        )]
    );
}

async fn an_expired_access_token_is_refreshed_once<S: Store + 'static>(store: Arc<S>) {
    // GIVEN a sender that has a token, which the service then expires
    let fcm = Fcm::start().await;
    device(&*store, &chef(), "chef:phone").await;
    fcm.run(&*store, &batch(&["order-insert"])).await;
    fcm.emulator.expire_access_tokens();
    // WHEN the next order's push goes out
    let second = event(batch_json_for("order-insert", "order-2"));
    let outcome = fcm.run(&*store, &second).await;
    // THEN one new token was fetched and the push delivered
    assert_eq!(outcome.metrics.sent, 1);
    assert_eq!(fcm.emulator.token_grants(), 2);
    assert_eq!(fcm.emulator.messages_to("chef:phone").len(), 2);
}

fn batch_json_for(fixture: &str, order_id: &str) -> serde_json::Value {
    harness::batch_json(&[for_order(&stream_fixture(fixture), order_id)])
}

async fn a_user_without_a_device_costs_no_fcm_call<S: Store + 'static>(store: Arc<S>) {
    let fcm = Fcm::start().await;
    let outcome = fcm
        .run(&*store, &batch(&["order-insert", "order-accepted"]))
        .await;
    assert_eq!(outcome.metrics.no_device, 2);
    assert!(fcm.emulator.attempts().is_empty());
    assert_eq!(fcm.emulator.token_requests(), 0, "not even a token");
}

async fn a_retried_batch_pushes_nothing_twice<S: Store + 'static>(store: Arc<S>) {
    // GIVEN the customer's phone
    let fcm = Fcm::start().await;
    device(&*store, &customer(), "customer:phone").await;
    let names = [
        "order-payment-confirmed",
        "order-accepted",
        "order-ready-for-pickup",
    ];
    // WHEN the same batch is delivered twice (Lambda's retry)
    let first = fcm.run(&*store, &batch(&names)).await;
    let second = fcm.run(&*store, &batch(&names)).await;
    // THEN the one push it calls for (accepted) went out once
    assert_eq!(first.metrics.sent, 1);
    assert_eq!(second.metrics.sent, 0);
    assert_eq!(second.metrics.already_sent, 1);
    assert_eq!(fcm.emulator.messages_to("customer:phone").len(), 1);
}

async fn a_token_that_moved_to_another_user_pushes_only_to_them<S: Store + 'static>(store: Arc<S>) {
    // GIVEN a phone first registered by customer-1, then signed in as customer-2
    let fcm = Fcm::start().await;
    device(&*store, &customer(), "shared:phone").await;
    device(&*store, &other_customer(), "shared:phone").await;
    // WHEN customer-1's order is accepted
    let outcome = fcm.run(&*store, &batch(&["order-accepted"])).await;
    // THEN nothing reaches the phone that is no longer theirs
    assert_eq!(outcome.metrics.no_device, 1);
    assert!(fcm.emulator.messages_to("shared:phone").is_empty());
}

async fn the_driver_is_woken_for_an_assignment<S: Store + 'static>(store: Arc<S>) {
    let fcm = Fcm::start().await;
    device(&*store, &driver(), "driver:phone").await;
    fcm.run(&*store, &batch(&["order-assigned-to-driver"]))
        .await;
    let received = fcm.received("driver:phone");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1, "driver:new_assignment");
    assert!(fcm.emulator.messages_to("driver:phone")[0].high_priority);
}

async fn a_push_that_keeps_failing_goes_to_the_queue_and_does_not_fail_the_batch<
    S: Store + 'static,
>(
    store: Arc<S>,
) {
    // GIVEN FCM unavailable for the chef's phone, every time
    let fcm = Fcm::start().await;
    device(&*store, &chef(), "chef:phone").await;
    fcm.emulator.fail("chef:phone", Fault::Internal);
    // WHEN an order is placed
    let outcome = fcm.run(&*store, &batch(&["order-insert"])).await;
    // THEN it was tried the allowed number of times, the batch succeeds, and the failed push
    // (naming the device, not the token) is handed over for the failure queue
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(fcm.emulator.attempts().len(), 3);
    assert_eq!(outcome.failed_pushes.len(), 1);
    let failed = serde_json::to_value(&outcome.failed_pushes[0]).unwrap();
    assert_eq!(failed["reason"], "unavailable");
    assert_eq!(failed["attempts"], 3);
    assert!(
        !failed.to_string().contains("chef:phone"),
        "no token: {failed}"
    );
}

async fn the_customer_is_told_the_driver_is_almost_there_once<S: Store + 'static>(store: Arc<S>) {
    // GIVEN order-1 in transit in the store, and the customer's phone
    let view = fixtures::placed_order("order-1", &customer(), fixtures::now());
    store.create_order(&view).await.unwrap();
    let view = fixtures::advance(&*store, view, rnd_domain::order::OrderStatus::InTransit).await;
    let fcm = Fcm::start().await;
    device(&*store, &customer(), "customer:phone").await;
    let live = |seq: u64, eta: u32| {
        let now = Utc::now();
        json!({
            "itemType": {"S": "live"}, "pk": {"S": "ORDER#order-1"}, "sk": {"S": "LIVE"},
            "orderId": {"S": "order-1"}, "seq": {"N": seq.to_string()},
            "status": {"S": "in_transit"}, "driverId": {"S": "driver-1"},
            "eta": {"M": {"etaMinutes": {"N": eta.to_string()},
                "estimatedDeliveryTime": {"S": now.to_rfc3339()},
                "computedAt": {"S": now.to_rfc3339()}}},
            "updatedAt": {"S": now.to_rfc3339()}
        })
    };
    let record = |n: u64, old: serde_json::Value, new: serde_json::Value| {
        json!({
            "eventID": format!("e{n}"), "eventName": "MODIFY", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/s",
            "dynamodb": {"Keys": {"pk": {"S": "ORDER#order-1"}, "sk": {"S": "LIVE"}},
                "OldImage": old, "NewImage": new,
                "SequenceNumber": format!("90000000000000000000{n}"), "SizeBytes": 300,
                "StreamViewType": "NEW_AND_OLD_IMAGES"}
        })
    };
    let seq = view.seq();
    // WHEN the ETA goes 9 → 3 → 2 minutes
    let outcome = fcm
        .run(
            &*store,
            &event(json!({"Records": [
                record(1, live(seq, 9), live(seq + 1, 3)),
                record(2, live(seq + 1, 3), live(seq + 2, 2)),
            ]})),
        )
        .await;
    // THEN the customer is told once
    assert!(outcome.response.batch_item_failures.is_empty());
    assert_eq!(
        fcm.received("customer:phone"),
        [(
            "Your driver is almost there".to_owned(),
            "order:eta_update".to_owned()
        )]
    );
}

support::on_both_stores!(
    a_chef_with_two_devices_gets_a_new_order_on_both,
    a_device_fcm_no_longer_knows_is_pruned,
    a_throttled_push_is_retried_after_its_retry_after_and_delivered,
    an_expired_access_token_is_refreshed_once,
    a_user_without_a_device_costs_no_fcm_call,
    a_retried_batch_pushes_nothing_twice,
    a_token_that_moved_to_another_user_pushes_only_to_them,
    the_driver_is_woken_for_an_assignment,
    a_push_that_keeps_failing_goes_to_the_queue_and_does_not_fail_the_batch,
    the_customer_is_told_the_driver_is_almost_there_once,
);
