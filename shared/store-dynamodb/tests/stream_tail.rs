//! The incremental stream reader (`StreamTail`) and its checkpoint table, against the test
//! database (`DYNAMODB_ENDPOINT`, see `tests/conformance.rs`): what a restarted reader resumes
//! from, what an uncommitted batch becomes, where a new consumer starts.

use rnd_domain::ports::{OrderStore, StoreError};
use rnd_store_conformance::fixtures::{customer, now, placed_order};
use rnd_store_dynamodb::DynamoStore;
use rnd_store_dynamodb::stream::{
    ChangeKind, CheckpointTable, StartingPosition, StreamChange, StreamTail, TailOptions,
};
use rnd_store_dynamodb::testing as common;

/// The consumer name the tests checkpoint under.
const CONSUMER: &str = "test-consumer";

/// A store on fresh tables, the orders stream's ARN and a fresh checkpoint table.
struct Setup {
    store: DynamoStore,
    arn: String,
    checkpoints: CheckpointTable,
}

async fn setup() -> Setup {
    let store = common::fresh_store().await;
    let arn = common::orders_stream_arn(store.client(), store.tables()).await;
    let checkpoints = CheckpointTable::new(
        store.client().clone(),
        CheckpointTable::name_for(&store.tables().orders),
    );
    checkpoints
        .create()
        .await
        .expect("create the checkpoint table");
    Setup {
        store,
        arn,
        checkpoints,
    }
}

impl Setup {
    /// A new tail of `CONSUMER` with durable checkpoints, from `LATEST` on its first start.
    async fn tail(&self) -> StreamTail {
        StreamTail::start(
            common::streams_client(),
            &self.arn,
            TailOptions::durable(StartingPosition::Latest, self.checkpoints.clone(), CONSUMER),
        )
        .await
        .expect("the tail starts")
    }

    /// Places order `id` (its order row and its live row are inserted).
    async fn place(&self, id: &str) {
        self.store
            .create_order(&placed_order(id, &customer(), now()))
            .await
            .expect("create the order");
    }
}

/// `(pk, sk)` of each change.
fn keys(changes: &[StreamChange]) -> Vec<(String, String)> {
    changes
        .iter()
        .map(|c| (c.pk.clone(), c.sk.clone()))
        .collect()
}

/// The changes placing `ids` makes, in order.
fn placed(ids: &[&str]) -> Vec<(String, String)> {
    ids.iter()
        .flat_map(|id| {
            [
                (format!("ORDER#{id}"), "ORDER".to_owned()),
                (format!("ORDER#{id}"), "LIVE".to_owned()),
            ]
        })
        .collect()
}

#[tokio::test]
async fn a_tail_starting_at_latest_reads_only_what_is_written_after_it_started() {
    // GIVEN an order placed before a consumer's first start at LATEST
    let setup = setup().await;
    setup.place("o-before").await;
    let mut tail = setup.tail().await;
    // WHEN another order is placed and the tail reads
    setup.place("o-after").await;
    let batch = tail.next_batch(100).await.expect("read");
    // THEN only the later order's changes come back, as inserts
    assert_eq!(keys(&batch), placed(&["o-after"]));
    assert!(batch.iter().all(|c| c.change.kind == ChangeKind::Insert));
}

#[tokio::test]
async fn a_new_tail_resumes_after_the_last_commit_without_repeats_or_gaps() {
    // GIVEN a tail that read and committed one order's changes, then stopped
    let setup = setup().await;
    let mut first = setup.tail().await;
    setup.place("o-1").await;
    let batch = first.next_batch(100).await.expect("read");
    assert_eq!(keys(&batch), placed(&["o-1"]));
    first.commit(batch.len()).await.expect("commit");
    drop(first);
    // WHEN orders are placed while no tail runs, and a new tail of the same consumer reads
    setup.place("o-2").await;
    setup.place("o-3").await;
    let mut second = setup.tail().await;
    let batch = second.next_batch(100).await.expect("read");
    // THEN it reads exactly what was written after the commit
    assert_eq!(keys(&batch), placed(&["o-2", "o-3"]));
    // AND, once that is committed, nothing more
    second.commit(batch.len()).await.expect("commit");
    assert!(second.next_batch(100).await.expect("read").is_empty());
}

#[tokio::test]
async fn uncommitted_changes_are_read_again_by_the_same_tail_and_by_a_new_one() {
    // GIVEN a tail that read two orders' changes and committed only the first one
    let setup = setup().await;
    let mut tail = setup.tail().await;
    setup.place("o-1").await;
    setup.place("o-2").await;
    let batch = tail.next_batch(100).await.expect("read");
    assert_eq!(keys(&batch), placed(&["o-1", "o-2"]));
    tail.commit(1).await.expect("commit the first change");
    // WHEN the same tail reads again
    let again = tail.next_batch(100).await.expect("read");
    // THEN the three uncommitted changes come back, in order
    assert_eq!(again, batch[1..]);
    // WHEN it commits one more, stops, and a new tail of the consumer reads
    tail.commit(1).await.expect("commit the second change");
    drop(tail);
    let mut restarted = setup.tail().await;
    let resumed = restarted.next_batch(100).await.expect("read");
    // THEN the new tail starts at the first uncommitted change
    assert_eq!(resumed, batch[2..]);
}

#[tokio::test]
async fn a_batch_holds_at_most_limit_changes_and_the_next_one_follows_on() {
    // GIVEN two orders placed after the tail started
    let setup = setup().await;
    let mut tail = setup.tail().await;
    setup.place("o-1").await;
    setup.place("o-2").await;
    // WHEN it reads batches of three, committing each
    let first = tail.next_batch(3).await.expect("read");
    tail.commit(first.len()).await.expect("commit");
    let second = tail.next_batch(3).await.expect("read");
    // THEN the first holds three changes and the second the fourth
    assert_eq!(keys(&first), placed(&["o-1", "o-2"])[..3]);
    assert_eq!(keys(&second), placed(&["o-1", "o-2"])[3..]);
}

#[tokio::test]
async fn a_consumer_that_started_before_reads_what_was_written_while_it_was_down() {
    // GIVEN a consumer that started at LATEST on an empty stream, committed nothing, and stopped
    let setup = setup().await;
    let mut first = setup.tail().await;
    assert!(first.next_batch(100).await.expect("read").is_empty());
    drop(first);
    // WHEN an order is placed while it is down, and it starts again
    setup.place("o-while-down").await;
    let mut restarted = setup.tail().await;
    // THEN it reads that order: LATEST applied to its first start only
    let batch = restarted.next_batch(100).await.expect("read");
    assert_eq!(keys(&batch), placed(&["o-while-down"]));
}

#[tokio::test]
async fn a_checkpoint_only_moves_forward() {
    // GIVEN a checkpoint at sequence number 1000
    let setup = setup().await;
    let table = &setup.checkpoints;
    table.save(CONSUMER, "shard-1", "1000").await.expect("save");
    // WHEN a reader tries to save 999 (shorter, and behind)
    let behind = table.save(CONSUMER, "shard-1", "999").await;
    // THEN it is refused as a conflict and the checkpoint stays
    assert!(matches!(behind, Err(StoreError::Conflict)), "{behind:?}");
    let saved = table.load(CONSUMER).await.expect("load");
    assert_eq!(saved.shards["shard-1"], "1000");
    // AND saving it again or further is fine
    table.save(CONSUMER, "shard-1", "1000").await.expect("same");
    table
        .save(CONSUMER, "shard-1", "1001")
        .await
        .expect("further");
    assert_eq!(
        table.load(CONSUMER).await.unwrap().shards["shard-1"],
        "1001"
    );
    // AND another consumer's checkpoints are its own
    assert!(table.load("another").await.unwrap().shards.is_empty());
}

#[tokio::test]
async fn read_order_changes_reads_the_whole_stream_and_commits_nothing() {
    // GIVEN two orders placed
    let setup = setup().await;
    setup.place("o-1").await;
    setup.place("o-2").await;
    // WHEN the whole stream is read twice
    let streams = common::streams_client();
    let once = rnd_store_dynamodb::stream::read_order_changes(&streams, &setup.arn)
        .await
        .expect("read");
    let twice = rnd_store_dynamodb::stream::read_order_changes(&streams, &setup.arn)
        .await
        .expect("read");
    // THEN both reads hold every change, in order
    assert_eq!(keys(&once), placed(&["o-1", "o-2"]));
    assert_eq!(once, twice);
}
