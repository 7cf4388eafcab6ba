//! The cost model: what one million accepted location updates cost on AWS at public on-demand
//! prices, from the work a bench run measured per update, next to the floor of `1 + S` API
//! Gateway messages (the driver's message in, one message out per subscriber).

use std::collections::BTreeMap;

use serde::Serialize;

/// Public prices, us-east-1, on-demand, first pricing tier (checked 2026-11; AWS changes them,
/// so re-check before quoting). Free tiers are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    /// API Gateway WebSocket: USD per million messages (in or out, 32 KB increments), first
    /// billion a month.
    pub api_gateway_messages_per_million: f64,
    /// API Gateway WebSocket: USD per million connection minutes.
    pub api_gateway_connection_minutes_per_million: f64,
    /// Lambda: USD per million requests.
    pub lambda_requests_per_million: f64,
    /// Lambda arm64 (the template's default `Architecture`): USD per GB-second, first tier.
    pub lambda_arm64_gb_second: f64,
    /// DynamoDB on-demand: USD per million write request units (after the November 2024 cut).
    pub dynamodb_write_units_per_million: f64,
    /// DynamoDB on-demand: USD per million read request units.
    pub dynamodb_read_units_per_million: f64,
}

/// The prices the cost model uses. DynamoDB Streams reads by Lambda are free, so the fan-out's
/// stream reads cost nothing here.
pub const PRICES: Prices = Prices {
    api_gateway_messages_per_million: 1.00,
    api_gateway_connection_minutes_per_million: 0.25,
    lambda_requests_per_million: 0.20,
    lambda_arm64_gb_second: 0.000_013_333_4,
    dynamodb_write_units_per_million: 0.625,
    dynamodb_read_units_per_million: 0.125,
};

/// When [`ROUTING_PRICES`] were last checked against the providers' published price lists.
pub const ROUTING_PRICES_CHECKED: &str = "2026-12-03";

/// A routing provider's list price for the request the stack makes of it (`EtaProvider`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingPrice {
    /// The provider as `EtaProvider` and `--eta-provider` name it.
    pub provider: &'static str,
    /// What the provider bills for the stack's request, and at which tier.
    pub billed_as: &'static str,
    /// USD per thousand requests.
    pub usd_per_thousand_requests: f64,
}

/// The routing providers' list prices (checked [`ROUTING_PRICES_CHECKED`]; providers change
/// them, so re-check before quoting), one row per provider the stack can call. Like
/// [`PRICES`], free tiers are ignored: Mapbox's first 100 000 requests a month are free, and
/// the row is its first paid tier; Google's row is its first tier.
pub const ROUTING_PRICES: [RoutingPrice; 3] = [
    RoutingPrice {
        provider: "osrm",
        billed_as: "nothing per request: OSRM is self-hosted, and its server is yours to pay for",
        usd_per_thousand_requests: 0.0,
    },
    RoutingPrice {
        provider: "mapbox",
        billed_as: "Directions API request (driving-traffic), 100 001-500 000 a month",
        usd_per_thousand_requests: 2.00,
    },
    RoutingPrice {
        provider: "google",
        billed_as: "Routes API: Compute Routes Pro (TRAFFIC_AWARE), up to 100 000 a month",
        usd_per_thousand_requests: 10.00,
    },
];

/// What a bench run's routing calls cost at one provider's list price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingCost {
    /// The provider and its price.
    #[serde(flatten)]
    pub price: RoutingPrice,
    /// USD per million accepted location updates for the calls made in the measured window.
    pub per_million_updates: f64,
    /// USD per million orders for the calls made on the orders' first locations (the route of
    /// the leg, once per trip), when the bench counted them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_million_orders_at_start: Option<f64>,
}

/// What `calls_per_update` routing calls per accepted update, and `calls_per_order_at_start`
/// per order on its first location, cost at each of `prices`.
pub fn routing_cost(
    calls_per_update: f64,
    calls_per_order_at_start: Option<f64>,
    prices: &[RoutingPrice],
) -> Vec<RoutingCost> {
    // A million of something done `n` times each is `n` million requests: n × 1 000 thousands.
    let per_million = |n: f64, price: &RoutingPrice| n * 1000.0 * price.usd_per_thousand_requests;
    prices
        .iter()
        .map(|price| RoutingCost {
            price: *price,
            per_million_updates: per_million(calls_per_update, price),
            per_million_orders_at_start: calls_per_order_at_start.map(|n| per_million(n, price)),
        })
        .collect()
}

/// What the cost model assumes, as the load report states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assumptions {
    /// How messages are counted.
    pub api_gateway: &'static str,
    /// How Lambda is counted.
    pub lambda: &'static str,
    /// How DynamoDB units are counted.
    pub dynamodb: &'static str,
    /// Where the prices come from.
    pub prices: &'static str,
}

/// The assumptions behind [`cost_per_million`] and the stack's metering.
pub const ASSUMPTIONS: Assumptions = Assumptions {
    api_gateway: "every frame in and out (acknowledgements and posts) in 32 KB increments; \
                  connection minutes of the orders' drivers and subscribers over the window",
    lambda: "one request per authorizer, $connect, $disconnect, route message and fan-out batch; \
             duration = local handler time rounded up to 1 ms per invocation (no cold starts, \
             no network to DynamoDB) x MemorySize from template.yaml (256 MB, fan-out 512 MB), \
             arm64",
    dynamodb: "DynamoStore's requests per store call: WRU = started KB per item written \
               (larger of before/after; x2 in TransactWriteItems; failed conditions cost the \
               same; +1 per KEYS_ONLY index entry written), RRU = started 4 KB per request \
               (x0.5 eventually consistent); stream reads by Lambda are free",
    prices: "us-east-1 on-demand list prices, first tier, checked 2026-11; free tiers ignored",
};

/// `MemorySize` of every function in `template.yaml`'s `Globals` (MB).
pub const DEFAULT_MEMORY_MB: u32 = 256;
/// `MemorySize` of `StreamFanoutFunction` in `template.yaml` (MB).
pub const FANOUT_MEMORY_MB: u32 = 512;

/// The configured memory of a function named as in the metrics (`stream-fanout`, a route key,
/// `authorizer`, …), MB.
pub fn memory_mb(function: &str) -> u32 {
    if function == rnd_local::metrics::FANOUT_FUNCTION {
        FANOUT_MEMORY_MB
    } else {
        DEFAULT_MEMORY_MB
    }
}

/// Billable work per accepted location update.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Work {
    /// WebSocket messages received (billed increments).
    pub messages_in: f64,
    /// WebSocket messages sent (billed increments): acknowledgements and posts.
    pub messages_out: f64,
    /// Connection minutes of the orders' room members (drivers and subscribers).
    pub connection_minutes: f64,
    /// Lambda invocations by function.
    pub lambda_invocations: BTreeMap<String, f64>,
    /// Billed Lambda milliseconds by function.
    pub lambda_billed_ms: BTreeMap<String, f64>,
    /// DynamoDB read request units.
    pub read_units: f64,
    /// DynamoDB write request units.
    pub write_units: f64,
    /// Calls to the routing provider (each attempt), when the stack routes ETAs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_calls: Option<f64>,
}

/// USD per million accepted location updates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostPerMillion {
    /// API Gateway messages, in and out.
    pub api_gateway_messages: f64,
    /// API Gateway connection minutes of the room members.
    pub api_gateway_connection_minutes: f64,
    /// Lambda requests.
    pub lambda_requests: f64,
    /// Lambda duration (billed ms × configured memory, arm64).
    pub lambda_duration: f64,
    /// DynamoDB write request units.
    pub dynamodb_writes: f64,
    /// DynamoDB read request units.
    pub dynamodb_reads: f64,
    /// Everything above.
    pub total: f64,
    /// `1 + S` API Gateway messages: the least any design pays.
    pub floor: f64,
    /// `total / floor`.
    pub total_over_floor: f64,
}

/// What a million updates doing `work` each cost at `prices`, with `subscribers` per order.
pub fn cost_per_million(work: &Work, subscribers: u32, prices: &Prices) -> CostPerMillion {
    // Per million updates, a per-update count of 1 is a million of it.
    let api_gateway_messages =
        (work.messages_in + work.messages_out) * prices.api_gateway_messages_per_million;
    let api_gateway_connection_minutes =
        work.connection_minutes * prices.api_gateway_connection_minutes_per_million;
    let lambda_requests =
        work.lambda_invocations.values().sum::<f64>() * prices.lambda_requests_per_million;
    let gb_seconds_per_update: f64 = work
        .lambda_billed_ms
        .iter()
        .map(|(function, ms)| ms / 1000.0 * f64::from(memory_mb(function)) / 1024.0)
        .sum();
    let lambda_duration = gb_seconds_per_update * 1e6 * prices.lambda_arm64_gb_second;
    let dynamodb_writes = work.write_units * prices.dynamodb_write_units_per_million;
    let dynamodb_reads = work.read_units * prices.dynamodb_read_units_per_million;
    let total = api_gateway_messages
        + api_gateway_connection_minutes
        + lambda_requests
        + lambda_duration
        + dynamodb_writes
        + dynamodb_reads;
    let floor = f64::from(1 + subscribers) * prices.api_gateway_messages_per_million;
    CostPerMillion {
        api_gateway_messages,
        api_gateway_connection_minutes,
        lambda_requests,
        lambda_duration,
        dynamodb_writes,
        dynamodb_reads,
        total,
        floor,
        total_over_floor: if floor > 0.0 { total / floor } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_million_updates_cost_each_resource_at_its_price_next_to_the_floor() {
        // GIVEN per update: 1 message in, 1 ack + 4 posts out, one route invocation of 2 ms
        // and a fan-out share of 0.1 invocation and 1 ms, 1 WRU and 1.5 RRU, 0.01 connection
        // minute
        let work = Work {
            messages_in: 1.0,
            messages_out: 5.0,
            connection_minutes: 0.01,
            lambda_invocations: BTreeMap::from([
                ("driver:location".to_owned(), 1.0),
                ("stream-fanout".to_owned(), 0.1),
            ]),
            lambda_billed_ms: BTreeMap::from([
                ("driver:location".to_owned(), 2.0),
                ("stream-fanout".to_owned(), 1.0),
            ]),
            read_units: 1.5,
            write_units: 1.0,
            routing_calls: None,
        };
        // WHEN a million of them are priced with 4 subscribers per order
        let cost = cost_per_million(&work, 4, &PRICES);
        // THEN each resource costs count × price
        assert!(close(cost.api_gateway_messages, 6.0));
        assert!(close(cost.api_gateway_connection_minutes, 0.0025));
        assert!(close(cost.lambda_requests, 1.1 * 0.20));
        // 1e6 × (2 ms × 0.25 GB + 1 ms × 0.5 GB) = 1000 GB-s
        assert!(close(cost.lambda_duration, 1000.0 * 0.000_013_333_4));
        assert!(close(cost.dynamodb_writes, 0.625));
        assert!(close(cost.dynamodb_reads, 1.5 * 0.125));
        // AND the floor is 1 + S messages, and the total their sum
        assert!(close(cost.floor, 5.0));
        let sum = 6.0 + 0.0025 + 0.22 + 1000.0 * 0.000_013_333_4 + 0.625 + 0.1875;
        assert!(close(cost.total, sum));
        assert!(close(cost.total_over_floor, sum / 5.0));
    }

    #[test]
    fn routing_calls_are_priced_at_every_providers_list_price() {
        // GIVEN 0.01 routing calls per update in the window and 1 per order at its start
        // WHEN they are priced at the routing providers' list prices
        let costs = routing_cost(0.01, Some(1.0), &ROUTING_PRICES);
        // THEN a million updates make 10 000 calls and a million orders a million calls, at
        // each provider's price per thousand
        let by_provider = |name: &str| costs.iter().find(|c| c.price.provider == name).unwrap();
        assert!(close(
            by_provider("mapbox").per_million_updates,
            10.0 * 2.00
        ));
        assert_eq!(
            by_provider("mapbox").per_million_orders_at_start,
            Some(1000.0 * 2.00)
        );
        assert!(close(
            by_provider("google").per_million_updates,
            10.0 * 10.00
        ));
        // AND a self-hosted OSRM costs nothing per call
        assert!(close(by_provider("osrm").per_million_updates, 0.0));
        // AND without a count at the start, no per-order figure is claimed
        let window_only = routing_cost(0.01, None, &ROUTING_PRICES);
        assert!(
            window_only
                .iter()
                .all(|c| c.per_million_orders_at_start.is_none())
        );
    }

    #[test]
    fn every_provider_the_stack_can_route_with_has_a_price() {
        // GIVEN the providers `EtaProvider` accepts besides the offline estimate
        let template: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(rnd_local::template::EMBEDDED).unwrap();
        let allowed: Vec<&str> = template["Parameters"]["EtaProvider"]["AllowedValues"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|v| *v != "none")
            .collect();
        // WHEN the routing price table is read
        let priced: Vec<&str> = ROUTING_PRICES.iter().map(|p| p.provider).collect();
        // THEN it prices each of them, once
        assert_eq!(priced, allowed);
    }

    #[test]
    fn the_memory_sizes_are_the_templates() {
        // GIVEN template.yaml as this crate embeds it
        let template: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(rnd_local::template::EMBEDDED).unwrap();
        // WHEN its global and fan-out memory sizes are read
        let global = template["Globals"]["Function"]["MemorySize"].as_u64();
        let fanout =
            template["Resources"]["StreamFanoutFunction"]["Properties"]["MemorySize"].as_u64();
        // THEN the cost model prices Lambda time at those sizes
        assert_eq!(global, Some(u64::from(DEFAULT_MEMORY_MB)));
        assert_eq!(fanout, Some(u64::from(FANOUT_MEMORY_MB)));
        assert_eq!(memory_mb("stream-fanout"), FANOUT_MEMORY_MB);
        assert_eq!(memory_mb("driver:location"), DEFAULT_MEMORY_MB);
    }
}
