//! The tracking payload, room authorization, and the ETA model.

mod common;

use chrono::Duration;
use common::*;
use rnd_domain::eta::{EtaEstimator, EtaRequest, OfflineEta};
use rnd_domain::geo::{GeoPoint, Latitude, Longitude};
use rnd_domain::identity::Role;
use rnd_domain::live::{DriverLocation, Eta, EtaSource};
use rnd_domain::order::OrderStatus;
use rnd_domain::rooms::{
    RoomRefusal, authorize_location, authorize_subscribe, initial_rooms, role_has_room,
};
use rnd_domain::route::{Route, RouteLeg, StoredRoute, Waypoint};
use rnd_domain::tracking::OrderTracking;
use rnd_domain::visibility::{DriverAccess, Visibility};

#[test]
fn tracking_shows_the_driver_position_and_eta_while_in_transit() {
    let mut view = order_in(OrderStatus::InTransit);
    view.live.location = Some(DriverLocation {
        latitude: Latitude::parse(30.2672).unwrap(),
        longitude: Longitude::parse(-97.7431).unwrap(),
        heading: None,
        speed: None,
        accuracy: None,
        recorded_at: t(26),
    });
    view.live.eta = Some(Eta {
        eta_minutes: 12,
        estimated_delivery_time: t(38),
        computed_at: t(26),
        source: EtaSource::Route,
        estimated_pickup_time: Some(t(30)),
    });
    let tr = OrderTracking::of(&view, Visibility::ALL);
    assert_eq!(tr.order_number, "RND-20260131-0001");
    assert!(tr.driver_assigned);
    assert_eq!(tr.driver_name.as_deref(), Some("John Driver"));
    assert_eq!(tr.driver_latitude, Some(30.2672));
    assert_eq!(tr.driver_longitude, Some(-97.7431));
    assert_eq!(tr.last_location_update, Some(t(26)));
    assert_eq!(tr.eta_minutes, Some(12));
    assert_eq!(tr.estimated_delivery_time, Some(t(38)));
    assert_eq!(tr.eta_source, Some(EtaSource::Route));
    assert_eq!(tr.estimated_pickup_time, Some(t(30)));
    assert_eq!(tr.status_history.len(), 7);
    assert_eq!(tr.seq, view.seq());
}

#[test]
fn tracking_of_an_unassigned_order_has_no_driver_fields() {
    let tr = OrderTracking::of(&placed(), Visibility::ALL);
    assert!(!tr.driver_assigned);
    let v = serde_json::to_value(&tr).unwrap();
    for key in ["driverName", "driverLatitude", "etaMinutes", "acceptedAt"] {
        assert!(v.get(key).is_none(), "{key} should be absent");
    }
}

#[test]
fn a_driver_may_no_longer_subscribe_once_its_access_after_delivery_has_passed() {
    // GIVEN a delivered order, and a driver access of six hours
    let view = order_in(OrderStatus::Delivered);
    let ended = view.order.ended_at().expect("delivered");
    let access = DriverAccess(Duration::hours(6));
    // THEN its driver may subscribe until then, and is told it does not exist after
    assert_eq!(
        authorize_subscribe(&driver(), &view.order, ended + Duration::hours(5), access),
        Ok(())
    );
    assert_eq!(
        authorize_subscribe(&driver(), &view.order, ended + Duration::hours(6), access),
        Err(RoomRefusal::NotFound)
    );
    // AND its customer still may
    assert_eq!(
        authorize_subscribe(&customer(), &view.order, ended + Duration::days(30), access),
        Ok(())
    );
}

#[test]
fn the_orders_parties_and_admins_may_subscribe_and_strangers_are_told_not_found() {
    let view = order_in(OrderStatus::InTransit);
    for who in [customer(), chef(), driver(), admin()] {
        assert_eq!(
            authorize_subscribe(&who, &view.order, t(30), DriverAccess::default()),
            Ok(()),
            "{}",
            who.user_id
        );
    }
    for who in [other_customer(), other_chef(), other_driver()] {
        assert_eq!(
            authorize_subscribe(&who, &view.order, t(30), DriverAccess::default()),
            Err(RoomRefusal::NotFound),
            "{}",
            who.user_id
        );
    }
}

#[test]
fn driver_cannot_stream_location_for_an_order_assigned_to_someone_else() {
    let view = order_in(OrderStatus::InTransit);
    assert_eq!(
        authorize_location(&other_driver(), &view.order),
        Err(RoomRefusal::NotFound)
    );
}

#[test]
fn only_the_assigned_driver_streams_and_only_in_a_driver_phase() {
    for status in OrderStatus::ALL {
        let view = order_in(status);
        let expected = if status.is_driver_active() {
            Ok(())
        } else if view.order.driver.is_some() {
            Err(RoomRefusal::Forbidden)
        } else {
            Err(RoomRefusal::NotFound)
        };
        assert_eq!(
            authorize_location(&driver(), &view.order),
            expected,
            "{status}"
        );
        // Customers, chefs and admins never stream a driver's position.
        for who in [customer(), chef(), admin()] {
            assert_eq!(
                authorize_location(&who, &view.order),
                Err(RoomRefusal::Forbidden),
                "{status} {}",
                who.user_id
            );
        }
    }
}

#[test]
fn a_drivers_new_connection_joins_its_user_room_and_no_role_room() {
    // GIVEN a driver, a customer and a chef WHEN they connect
    // THEN each joins its user room only: nothing is sent to role:driver, role:customer or
    // role:chef, so $connect writes no membership into those shared partitions
    for (who, user_room) in [
        (driver(), "user:driver-1"),
        (customer(), "user:customer-1"),
        (chef(), "user:chef-1"),
    ] {
        let rooms: Vec<String> = initial_rooms(&who).iter().map(|r| r.to_string()).collect();
        assert_eq!(rooms, [user_room]);
        assert!(!role_has_room(who.role), "{}", who.role);
    }
}

#[test]
fn an_admins_new_connection_joins_its_user_room_and_role_admin() {
    // GIVEN an admin WHEN it connects
    // THEN it joins its user room and role:admin, where every status update goes
    let rooms: Vec<String> = initial_rooms(&admin())
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(rooms, ["user:admin-1", "role:admin"]);
    assert!(role_has_room(Role::Admin));
}

fn request(status: OrderStatus, driver: GeoPoint, speed: Option<f64>) -> EtaRequest {
    EtaRequest {
        order_id: rnd_domain::ids::OrderId::parse("order-1").unwrap(),
        driver,
        pickup: GeoPoint::parse(30.2676, -97.7360).unwrap(),
        dropoff: GeoPoint::parse(30.3072, -97.7560).unwrap(),
        status,
        reported_speed_mps: speed,
        observed_speed_mps: None,
        route: None,
        now: t(0),
    }
}

#[tokio::test]
async fn eta_after_pickup_is_distance_times_circuity_over_speed() {
    let model = OfflineEta::default();
    let at_chef = GeoPoint::parse(30.2676, -97.7360).unwrap();
    let r = request(OrderStatus::InTransit, at_chef, Some(10.0));
    let e = model.estimate(&r).await;
    let straight = at_chef.distance_m(&r.dropoff);
    assert!((e.distance_m - straight * 1.3).abs() < 1.0);
    let expected_secs = (straight * 1.3 / 10.0).round() as i64;
    assert_eq!(
        e.eta.estimated_delivery_time,
        t(0) + Duration::seconds(expected_secs)
    );
    assert_eq!(e.eta.eta_minutes as i64, (expected_secs + 59) / 60);
}

#[tokio::test]
async fn eta_before_pickup_goes_through_the_chef() {
    let model = OfflineEta::default();
    let away = GeoPoint::parse(30.2500, -97.7500).unwrap();
    let before = model
        .estimate(&request(OrderStatus::AssignedToDriver, away, Some(10.0)))
        .await;
    let after = model
        .estimate(&request(OrderStatus::InTransit, away, Some(10.0)))
        .await;
    assert!(before.distance_m > after.distance_m);
    assert!(before.eta.eta_minutes > after.eta.eta_minutes);
    // AND before the pickup it says when the driver reaches the chef; after, it does not
    let at_chef = before
        .eta
        .estimated_pickup_time
        .expect("a pickup time before the pickup");
    assert!(t(0) < at_chef && at_chef < before.eta.estimated_delivery_time);
    assert_eq!(after.eta.estimated_pickup_time, None);
    assert_eq!(before.eta.source, EtaSource::Estimate);
}

#[test]
fn eta_along_a_route_is_its_remaining_time_plus_the_chefs_door_while_the_pickup_is_ahead() {
    // GIVEN a 10 km, 20-minute route through the chef, who is 4 km and 8 minutes along it
    let model = OfflineEta::default();
    let route = StoredRoute::keep(
        &Route {
            points: vec![
                GeoPoint::parse(30.20, -97.75).unwrap(),
                GeoPoint::parse(30.29, -97.75).unwrap(),
            ],
            distance_m: 10_000.0,
            duration_s: 1_200.0,
            pickup: Some(Waypoint {
                distance_m: 4_000.0,
                duration_s: 480.0,
            }),
        },
        RouteLeg::ViaPickup,
        "osrm",
        t(0),
    );
    // WHEN the driver is a quarter along
    let (eta, left_m) = model.along_route(&route, 0.25, t(5));
    // THEN the ETA is the remaining 15 minutes plus the 2 minutes at the chef's door, from the
    // route, and the chef is 3 minutes away
    assert_eq!(eta.source, EtaSource::Route);
    assert_eq!(eta.estimated_delivery_time, t(5) + Duration::minutes(17));
    assert_eq!(eta.eta_minutes, 17);
    assert_eq!(eta.estimated_pickup_time, Some(t(5) + Duration::minutes(3)));
    assert_eq!(left_m, 7_500.0);
    // AND past the chef only the driving time is left
    let (eta, _) = model.along_route(&route, 0.5, t(10));
    assert_eq!(eta.estimated_delivery_time, t(10) + Duration::minutes(10));
    assert_eq!(eta.estimated_pickup_time, None);
}

#[tokio::test]
async fn eta_speed_adapts_to_the_drivers_observed_speed_within_bounds() {
    let model = OfflineEta::default();
    let p = GeoPoint::parse(30.2500, -97.7500).unwrap();
    let slow = model
        .estimate(&request(OrderStatus::InTransit, p, Some(4.0)))
        .await;
    let fast = model
        .estimate(&request(OrderStatus::InTransit, p, Some(15.0)))
        .await;
    assert!(slow.eta.eta_minutes > fast.eta.eta_minutes);
    // A stopped driver does not make the ETA infinite: speed is floored.
    let stopped = model
        .estimate(&request(OrderStatus::InTransit, p, Some(0.0)))
        .await;
    assert!(stopped.eta.eta_minutes < 60, "{}", stopped.eta.eta_minutes);
    // The average moves a fifth of the way towards each new observation.
    let mut r = request(OrderStatus::InTransit, p, Some(20.0));
    r.observed_speed_mps = Some(10.0);
    let smoothed = model.estimate(&r).await;
    assert_eq!(smoothed.observed_speed_mps, Some(12.0));
}

#[tokio::test]
async fn eta_at_the_door_is_zero_minutes() {
    let model = OfflineEta::default();
    let door = GeoPoint::parse(30.3072, -97.7560).unwrap();
    let e = model
        .estimate(&request(OrderStatus::InTransit, door, None))
        .await;
    assert_eq!(e.eta.eta_minutes, 0);
    assert_eq!(e.eta.estimated_delivery_time, t(0));
}
