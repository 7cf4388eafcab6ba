//! Never miss an event, end to end: real clients that go away and come back, the inbox and
//! the order history on both stores, and a stack killed (SIGKILL) right after the HTTP API
//! confirmed a change.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use rnd_domain::order::OrderStatus;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;

on_both_stores!(
    a_chef_offline_while_an_order_is_placed_gets_it_on_resume_once,
    a_customer_hears_of_a_status_change_without_subscribing_with_a_cursor,
    a_customer_offline_during_three_transitions_gets_them_on_subscribe_with_since_seq,
    a_stack_killed_right_after_a_confirmed_change_replays_it_after_a_restart,
);

/// Sends `resume` (with `cursor`, if any) and returns what arrived up to `resumed`, and
/// `resumed` itself.
async fn resume(client: &mut Client, cursor: Option<&str>) -> (Vec<Value>, Value) {
    let body = match cursor {
        Some(c) => json!({"action": "resume", "cursor": c}),
        None => json!({"action": "resume"}),
    };
    client.send(body).await;
    let mut before = Vec::new();
    loop {
        let frame = client.next().await;
        if frame["event"] == "resumed" || frame["event"] == "error" {
            return (before, frame);
        }
        before.push(frame);
    }
}

async fn a_chef_offline_while_an_order_is_placed_gets_it_on_resume_once(store: StoreKind) {
    // GIVEN a chef who heard of order-0 live and kept its cursor, then went away
    let stack = spawn_on(store).await;
    let store = stack.store();
    let mut chef = Client::connect(&stack, "chef-1", "chef").await;
    place_order(&*store, "order-0").await;
    let first = chef.next_event("order:new").await;
    let kept = first["data"]["cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    chef.close().await;
    wait_until_disconnected(&stack, "chef-1").await;

    // WHEN order-1 is placed while it is away (the fan-out keeps it), and it comes back and
    // resumes from its cursor
    place_order(&*store, "order-1").await;
    wait_for_inbox(&*store, "chef-1", 2).await;
    // (the fan-out keeps, then posts: a connection back before it is done would hear it live)
    stack.fanout_settled().await;
    let mut chef = Client::connect(&stack, "chef-1", "chef").await;
    let (replayed, resumed) = resume(&mut chef, Some(&kept)).await;

    // THEN order-1's order:new arrives first, marked replayed, then `resumed`
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["event"], "order:new");
    assert_eq!(replayed[0]["data"]["orderId"], "order-1");
    assert_eq!(replayed[0]["data"]["replayed"], true);
    assert_eq!(resumed["data"]["replayed"], 1, "{resumed}");
    assert_eq!(resumed["data"]["continuity"], "ok");
    assert_eq!(resumed["data"]["cursor"], replayed[0]["data"]["cursor"]);

    // AND a second resume from the newest cursor replays nothing
    let newest = resumed["data"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let (again, resumed) = resume(&mut chef, Some(&newest)).await;
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(resumed["data"]["replayed"], 0);
    assert_eq!(resumed["data"]["cursor"], newest.as_str());
    stack.stop().await;
}

async fn a_customer_hears_of_a_status_change_without_subscribing_with_a_cursor(store: StoreKind) {
    // GIVEN a customer connected, subscribed to nothing
    let stack = spawn_on(store).await;
    let store = stack.store();
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    // WHEN its order is paid for
    let view = place_order(&*store, "order-1").await;
    step(&*store, view).await;
    // THEN it hears of it through its user room, with its cursor and the previous status seq
    let update = customer.next_event("order:status_update").await;
    assert_eq!(update["data"]["status"], "payment_confirmed", "{update}");
    assert!(update["data"]["cursor"].is_string(), "{update}");
    assert_eq!(update["data"]["previousStatusSeq"], 1, "{update}");
    stack.stop().await;
}

async fn a_customer_offline_during_three_transitions_gets_them_on_subscribe_with_since_seq(
    store: StoreKind,
) {
    // GIVEN a customer who saw its order accepted, then went away
    let stack = spawn_on(store).await;
    let store = stack.store();
    let view = place_order(&*store, "order-1").await;
    let view = advance_to(&*store, view, OrderStatus::Accepted).await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    let snapshot = customer.subscribe("order-1").await;
    let since = snapshot["data"]["seq"].as_u64().expect("seq");
    customer.close().await;
    wait_until_disconnected(&stack, "customer-1").await;

    // WHEN the order is made ready, assigned and picked up meanwhile, and it comes back and
    // subscribes with the last seq it saw
    advance_to(&*store, view, OrderStatus::PickedUp).await;
    wait_for_inbox(&*store, "customer-1", 5).await;
    // (the fan-out keeps, then posts: a connection back before it is done would hear it live)
    stack.fanout_settled().await;
    let mut customer = Client::connect(&stack, "customer-1", "customer").await;
    customer
        .send(json!({"action": "subscribe:order", "orderId": "order-1", "sinceSeq": since}))
        .await;

    // THEN the three status updates arrive first, in order, then `subscribed` (continuity ok)
    let mut statuses = Vec::new();
    let subscribed = loop {
        let frame = customer.next().await;
        if frame["event"] == "subscribed" {
            break frame;
        }
        assert_eq!(frame["event"], "order:status_update", "{frame}");
        assert_eq!(frame["data"]["replayed"], true, "{frame}");
        statuses.push(frame["data"]["status"].as_str().expect("status").to_owned());
    };
    assert_eq!(
        statuses,
        ["ready_for_pickup", "assigned_to_driver", "picked_up"]
    );
    assert_eq!(subscribed["data"]["continuity"], "ok", "{subscribed}");
    assert_eq!(subscribed["data"]["replayed"], 3);
    stack.stop().await;
}

/// `rnd-local serve` as a separate process, on `store`'s data, on a free port.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    async fn start(args: &[String]) -> Process {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("addr").port()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_rnd-local"))
            .arg("serve")
            .args(["--port", &port.to_string()])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("rnd-local starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if line.contains("ready on") {
                    return;
                }
            }
            panic!("rnd-local exited before it was ready");
        })
        .await;
        ready.expect("rnd-local is ready in time");
        Process {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn websocket_url(&self) -> String {
        format!("ws://{}/realtime", self.addr)
    }

    /// SIGKILL: no shutdown, no flush, no `$disconnect`.
    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

async fn a_stack_killed_right_after_a_confirmed_change_replays_it_after_a_restart(
    store: StoreKind,
) {
    // GIVEN `rnd-local serve` in its own process on durable data, with a placed order, and the
    // customer holding a cursor from before anything happened to it
    let config = store.durable_config();
    let args: Vec<String> = match &config.store {
        rnd_local::StoreConfig::Sqlite { dir } => {
            vec!["--data".into(), dir.display().to_string()]
        }
        rnd_local::StoreConfig::DynamoDb { endpoint, tables } => {
            let prefix = tables
                .orders
                .strip_suffix("-orders")
                .expect("tables named by prefix")
                .to_owned();
            vec![
                "--dynamodb-endpoint".into(),
                endpoint.clone(),
                "--tables-prefix".into(),
                prefix,
            ]
        }
        rnd_local::StoreConfig::Memory => unreachable!("durable"),
    };
    let stack = Process::start(&args).await;
    let direct = open_directly(&config);
    place_order(&*direct, "order-1").await;
    let mut customer = Client::connect_to(&stack.websocket_url(), "customer-1", "customer").await;
    let (_, before) = resume(&mut customer, None).await;
    let cursor = before["data"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    customer.close().await;

    // WHEN an admin confirms the payment over the HTTP API and, the moment it answers, the
    // stack is killed
    let admin = token("admin-1", "admin");
    let (status, body) = http_to(
        stack.addr,
        &format!(
            "POST /orders/order-1/confirm-payment HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {admin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    stack.kill().await;
    assert_eq!(status, 200, "{body}");

    // AND it is started again on the same data
    let stack = Process::start(&args).await;
    wait_for_inbox(&*direct, "customer-1", 1).await;
    let mut customer = Client::connect_to(&stack.websocket_url(), "customer-1", "customer").await;

    // THEN resuming from the old cursor replays the status update, with continuity
    let (replayed, resumed) = resume(&mut customer, Some(&cursor)).await;
    // (the restarted fan-out keeps, then posts: a connection made in between may also hear
    // the update live, a duplicate of the same seq that a client drops)
    let (statuses, live): (Vec<&Value>, Vec<&Value>) = replayed
        .iter()
        .filter(|f| f["event"] == "order:status_update")
        .partition(|f| f["data"]["replayed"] == true);
    assert_eq!(statuses.len(), 1, "{replayed:?}");
    assert_eq!(statuses[0]["data"]["status"], "payment_confirmed");
    for copy in live {
        assert_eq!(copy["data"]["seq"], statuses[0]["data"]["seq"], "{copy}");
    }
    assert_eq!(resumed["data"]["continuity"], "ok", "{resumed}");
    // AND subscribing since the order's first seq replays it from the order's history too
    customer
        .send(json!({"action": "subscribe:order", "orderId": "order-1", "sinceSeq": 1}))
        .await;
    // (the live copy above may still be on its way: it is the same seq, and not a replay)
    let update = loop {
        let update = customer.next_event("order:status_update").await;
        if update["data"]["replayed"] == true {
            break update;
        }
        assert_eq!(
            update["data"]["seq"], statuses[0]["data"]["seq"],
            "{update}"
        );
    };
    assert_eq!(update["data"]["status"], "payment_confirmed", "{update}");
    let subscribed = customer.next_event("subscribed").await;
    assert_eq!(subscribed["data"]["continuity"], "ok", "{subscribed}");
    customer.close().await;
    stack.kill().await;
    remove_data(&config);
}
