//! One conformance suite for every store adapter.
//!
//! Each adapter crate has a `tests/conformance.rs` that implements [`Harness`] (how to make a
//! fresh, isolated store and how to read back what the store recorded) and expands
//! [`conformance_suite!`] with an async expression that builds a harness. Every test then runs
//! against that adapter: transitions and their races, rate-limit races, room membership, TTL
//! fields, the change log's order, profiles, the per-user inbox, push devices, the push
//! ledger, presence and connection analytics.
//!
//! # Layout
//! - [`Harness`]: what an adapter's test provides.
//! - [`fixtures`]: orders, actors and connections to test with.
//! - [`cases`]: the tests, as async functions over a harness.
//! - [`conformance_suite!`]: expands every case into a `#[tokio::test]`.

use std::sync::Arc;

use async_trait::async_trait;
use rnd_domain::change::OrderChange;
use rnd_domain::ids::{ConnectionId, OrderId};
use rnd_domain::ports::Store;

pub mod cases;
pub mod fixtures;

/// What an adapter's test provides to the suite.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The store under test.
    type Store: Store + 'static;

    /// The store, fresh for this test (its own tables or database).
    fn store(&self) -> Arc<Self::Store>;

    /// Every change recorded for `order`'s items (order and live), in the order the store
    /// recorded them: the embedded change log, or the DynamoDB stream.
    async fn recorded_changes(&self, order: &OrderId) -> Vec<OrderChange>;

    /// The TTL attribute stored on the connection's row, epoch seconds (None when no row).
    async fn stored_connection_ttl(&self, connection: &ConnectionId) -> Option<i64>;

    /// The TTL attributes stored on the connection's membership rows, epoch seconds.
    async fn stored_membership_ttls(&self, connection: &ConnectionId) -> Vec<i64>;
}

/// Expands every conformance case into a `#[tokio::test]` for one adapter.
///
/// ```ignore
/// rnd_store_conformance::conformance_suite!(MyHarness::new().await);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@cases $make;
            order_round_trips_through_the_store,
            creating_an_order_twice_is_refused,
            unknown_order_is_none,
            a_transition_is_committed_with_the_next_sequence,
            two_racing_transitions_have_exactly_one_winner,
            a_transition_read_before_a_location_write_conflicts,
            the_live_item_is_read_alone_with_the_points_its_eta_needs,
            an_announced_location_marks_the_live_item_until_another_write,
            order_numbers_are_distinct_under_concurrency,
            order_numbers_count_per_day,
            assigned_driver_location_is_accepted_and_moves_the_sequence,
            a_route_written_with_a_location_is_kept_until_another_replaces_it,
            location_too_soon_after_the_last_is_rate_limited,
            concurrent_locations_in_one_interval_accept_exactly_one,
            location_from_another_driver_is_refused,
            location_outside_a_driver_phase_is_refused,
            location_for_an_unknown_order_is_not_found,
            opened_connection_is_in_its_initial_rooms_and_no_other,
            joining_and_leaving_an_order_room,
            joining_twice_is_idempotent,
            joining_with_a_closed_connection_is_refused,
            closing_removes_the_connection_and_every_membership,
            closing_removes_role_memberships_too,
            closing_twice_is_harmless,
            expired_connections_are_invisible_before_the_store_deletes_them,
            connection_and_membership_rows_carry_the_ttl,
            change_log_records_every_change_in_order,
            orders_are_listed_newest_first_per_party_with_a_cursor,
            a_cursor_the_store_did_not_issue_is_refused,
            opening_a_connection_id_twice_is_refused,
            a_connection_is_dead_from_the_instant_of_its_ttl,
            members_past_their_token_are_listed_apart_from_the_open_ones,
            an_idempotency_key_is_claimed_once_and_then_answers_what_its_request_answered,
            racing_claims_of_one_idempotency_key_leave_exactly_one_claimant,
            a_limit_admits_its_uses_per_window_then_says_when_to_come_back,
            concurrent_uses_of_a_limit_grant_exactly_its_uses,
            presence_says_who_is_online_since_when_and_when_last_seen,
            connects_and_disconnects_are_counted_by_role_with_their_durations,
            a_connection_past_its_ttl_is_offline_and_counted_as_expired,
            concurrent_connects_and_disconnects_are_each_counted_once,
            a_profile_round_trips_through_the_store,
            saving_a_profile_again_replaces_it,
            an_unknown_profile_is_none,
            profiles_are_kept_per_user_and_are_not_orders,
            an_inbox_keeps_events_in_order_at_gapless_positions,
            appending_a_kept_event_again_keeps_its_position_and_adds_nothing,
            an_inbox_is_read_after_a_position_up_to_a_limit,
            a_user_without_an_inbox_reads_as_empty_at_epoch_zero,
            expired_events_are_not_read_and_can_be_kept_again,
            concurrent_appends_get_distinct_gapless_positions,
            inboxes_are_kept_per_user,
            a_registered_device_is_listed_for_its_user_only,
            registering_a_token_again_keeps_the_device_and_refreshes_it,
            a_token_registered_by_another_user_moves_to_them,
            an_eleventh_device_drops_the_least_recently_seen,
            only_its_owner_removes_a_device,
            a_device_is_forgotten_270_days_after_it_was_last_seen,
            racing_registrations_of_one_token_leave_one_holder,
            the_push_ledger_records_a_notification_once_per_user,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let harness = $make;
                $crate::cases::$case(&harness).await;
            }
        )*
    };
}
