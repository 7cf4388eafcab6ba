//! A location write against the live item as read: what the read alone can already refuse.

mod common;

use common::*;
use rnd_domain::geo::{Latitude, Longitude};
use rnd_domain::live::{DriverLocation, LiveState, LocationOutcome, LocationWrite};
use rnd_domain::order::OrderStatus;

/// The live item of an order picked up by `driver-1`, whose last location was accepted at
/// `accepted_at_ms`.
fn picked_up(accepted_at_ms: i64) -> LiveState {
    LiveState {
        location_accepted_at_ms: Some(accepted_at_ms),
        ..order_in(OrderStatus::PickedUp).live
    }
}

/// A location of `driver` at `now_ms`, at most one a second.
fn write(driver: &str, now_ms: i64) -> LocationWrite {
    let live = order_in(OrderStatus::PickedUp).live;
    LocationWrite {
        order_id: live.order_id,
        driver_id: actor(driver, rnd_domain::identity::Role::Driver).user_id,
        location: DriverLocation {
            latitude: Latitude::parse(30.27).unwrap(),
            longitude: Longitude::parse(-97.74).unwrap(),
            heading: None,
            speed: None,
            accuracy: None,
            recorded_at: t(10),
        },
        eta: None,
        observed_speed_mps: None,
        route: None,
        now_ms,
        min_interval_ms: 1_000,
        announced: true,
    }
}

#[test]
fn a_location_sooner_than_the_interval_after_the_last_is_refused_from_the_read_alone() {
    // GIVEN the live item of an order whose driver's last location was accepted at t = 10 s
    let live = picked_up(10_000);
    // WHEN the same driver sends again 300 ms later
    let refusal = LocationOutcome::too_soon(&live, &write("driver-1", 10_300));
    // THEN the read already refuses it, with the time left
    assert_eq!(
        refusal,
        Some(LocationOutcome::RateLimited {
            retry_after_ms: 700
        })
    );
}

#[test]
fn what_only_the_write_can_tell_is_left_to_it() {
    // GIVEN the same live item
    let live = picked_up(10_000);
    // WHEN a location comes a second later, or from another driver, or the item is not in a
    // driver phase
    let later = LocationOutcome::too_soon(&live, &write("driver-1", 11_000));
    let stranger = LocationOutcome::too_soon(&live, &write("driver-2", 10_300));
    let delivered = LiveState {
        status: OrderStatus::Delivered,
        ..live.clone()
    };
    let after_delivery = LocationOutcome::too_soon(&delivered, &write("driver-1", 10_300));
    // THEN the read refuses none of them: the conditional write decides
    assert_eq!(later, None);
    assert_eq!(stranger, None);
    assert_eq!(after_delivery, None);
}
