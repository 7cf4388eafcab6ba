/* Generated from docs/asyncapi.yaml by scripts/gen-types.mjs (npm run gen): do not edit.
   The schemas there are generated from the Rust protocol types (rnd_domain::protocol_schema). */

/**
 * Every message a client may send: `{"action": …, …fields}`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ClientMessage".
 */
export type ClientMessage = (SubscribeOrderAction | UnsubscribeOrderAction | DriverLocationAction | ResumeAction | PingAction | HelloAction)
/**
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "OrderId".
 */
export type OrderId = string
/**
 * Which `driver:location` messages get a `driver:location_acknowledged` answer: its `ack`
 * field. A driver app that only needs to hear when it should act (slow down, stop sending)
 * asks for `"refusals"` and saves a message per accepted location.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "LocationAcks".
 */
export type LocationAcks = ("all" | "refusals")
/**
 * What `recordedAt` may be on the wire: an RFC 3339 time or epoch milliseconds (the schema
 * only; `parse_client_message` reads the value).
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "RecordedAt".
 */
export type RecordedAt = (string | number)
/**
 * Every message the server sends: `{"event": …, "data": {…}}`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ServerMessage".
 */
export type ServerMessage = (ConnectedEvent | SubscribedEvent | UnsubscribedEvent | DriverLocationAcknowledgedEvent | PongEvent | ResumedEvent | ErrorEvent | OrderNewEvent | OrderStatusUpdateEvent | DriverNewAssignmentEvent | DriverLocationUpdateEvent | OrderEtaUpdateEvent)
/**
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ConnectionId".
 */
export type ConnectionId = string
/**
 * What a user is to the platform.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "Role".
 */
export type Role = ("customer" | "chef" | "driver" | "admin")
/**
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "UserId".
 */
export type UserId = string
/**
 * With `sinceSeq` only: whether every status update after it was replayed.
 */
export type Continuity = ("ok" | "lost")
/**
 * What the ETA came from: `route` (a routing provider's) or `estimate` (offline).
 */
export type EtaSource = ("route" | "estimate")
/**
 * Where an order is in its life.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "OrderStatus".
 */
export type OrderStatus = ("pending" | "payment_confirmed" | "accepted" | "ready_for_pickup" | "assigned_to_driver" | "picked_up" | "in_transit" | "delivered" | "cancelled")
/**
 * Why a location was not accepted.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "LocationRejection".
 */
export type LocationRejection = "rate_limited"
/**
 * Whether a replay gave the client everything it missed.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "Continuity".
 */
export type Continuity1 = ("ok" | "lost")
/**
 * Stable error codes of the `error` event.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ErrorCode".
 */
export type ErrorCode = ("invalid_message" | "unknown_action" | "forbidden" | "not_found" | "rate_limited" | "token_expired" | "internal")
/**
 * Who made the change: sent to admins only (`ServerMessage::seen_by`).
 */
export type UserId1 = string
/**
 * What an ETA came from.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "EtaSource".
 */
export type EtaSource1 = ("route" | "estimate")

/**
 * Every message of the RND Realtime WebSocket API, either way.
 */
export interface Protocol {
client: ClientMessage
server: ServerMessage
}
/**
 * Join the order's room and get its tracking snapshot (`subscribed`); with `sinceSeq`, its
 * status updates after that `seq` are replayed first.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "SubscribeOrderAction".
 */
export interface SubscribeOrderAction {
action: "subscribe:order"
/**
 * The order.
 */
orderId: OrderId
/**
 * Replay the order's status updates after this `seq` before answering.
 */
sinceSeq?: (number | null)
}
/**
 * Leave the order's room (`unsubscribed`).
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "UnsubscribeOrderAction".
 */
export interface UnsubscribeOrderAction {
action: "unsubscribe:order"
/**
 * The order.
 */
orderId: OrderId
}
/**
 * The assigned driver's position (`driver:location_acknowledged`, or with `ack:
 * "refusals"` an answer only when it is refused).
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "DriverLocationAction".
 */
export interface DriverLocationAction {
/**
 * Horizontal accuracy, m.
 */
accuracy?: (number | null)
/**
 * Which outcomes are acknowledged (`ack`; every one unless the driver app asks for
 * refusals only).
 */
ack?: (LocationAcks & string)
action: "driver:location"
/**
 * Heading in degrees clockwise from north.
 */
heading?: (number | null)
/**
 * Latitude in degrees.
 */
latitude: number
/**
 * Longitude in degrees.
 */
longitude: number
/**
 * The order being delivered.
 */
orderId: OrderId
/**
 * When the device recorded it: an RFC 3339 time or epoch milliseconds (the server's time
 * when absent or in the future).
 */
recordedAt?: (RecordedAt | null)
/**
 * Ground speed, m/s.
 */
speed?: (number | null)
}
/**
 * Replay the user's inbox after `cursor`, then `resumed`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ResumeAction".
 */
export interface ResumeAction {
action: "resume"
/**
 * The last cursor the client saw (its opaque text), if any.
 */
cursor?: (string | null)
}
/**
 * Keep-alive: answered with `pong`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "PingAction".
 */
export interface PingAction {
action: "ping"
}
/**
 * Answered with `connected`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "HelloAction".
 */
export interface HelloAction {
action: "hello"
}
/**
 * Answer to `hello`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ConnectedEvent".
 */
export interface ConnectedEvent {
data: ConnectedData
event: "connected"
}
/**
 * Payload of `connected`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ConnectedData".
 */
export interface ConnectedData {
connectionId: ConnectionId
role: Role
serverTime: string
userId: UserId
}
/**
 * Answer to `subscribe:order`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "SubscribedEvent".
 */
export interface SubscribedEvent {
data: SubscribedData
event: "subscribed"
}
/**
 * Payload of `subscribed`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "SubscribedData".
 */
export interface SubscribedData {
continuity?: Continuity
orderId: OrderId
/**
 * With `sinceSeq` only: how many status updates were replayed before this answer.
 */
replayed?: number
seq: number
tracking: OrderTracking
}
/**
 * `GET /orders/{id}/tracking` and the `subscribed` event's `tracking`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "OrderTracking".
 */
export interface OrderTracking {
acceptedAt?: string
assignedAt?: string
/**
 * Absent for the customer until the chef accepts.
 */
chefAddress?: string
chefBusinessName: string
chefLatitude?: number
chefLongitude?: number
chefName: string
createdAt: string
customerName: string
deliveredAt?: string
/**
 * Absent for the chef until they accept.
 */
deliveryAddress?: string
deliveryLatitude?: number
deliveryLongitude?: number
driverAssigned: boolean
driverLatitude?: number
driverLongitude?: number
driverName?: string
driverPhone?: string
estimatedDeliveryTime?: string
/**
 * The driver's arrival at the chef, while on the way there.
 */
estimatedPickupTime?: string
etaMinutes?: number
etaSource?: EtaSource
lastLocationUpdate?: string
orderId: string
orderNumber: string
paymentConfirmedAt?: string
pickedUpAt?: string
readyAt?: string
/**
 * The order's sequence number this snapshot reflects.
 */
seq: number
status: OrderStatus
statusHistory: TrackingStatus[]
}
/**
 * One entry of the tracking payload's status history.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "TrackingStatus".
 */
export interface TrackingStatus {
/**
 * Who changed it.
 */
changedBy?: string
/**
 * Status entered.
 */
status: OrderStatus
/**
 * When.
 */
timestamp: string
}
/**
 * Answer to `unsubscribe:order`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "UnsubscribedEvent".
 */
export interface UnsubscribedEvent {
data: UnsubscribedData
event: "unsubscribed"
}
/**
 * Payload of `unsubscribed`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "UnsubscribedData".
 */
export interface UnsubscribedData {
orderId: OrderId
}
/**
 * Answer to `driver:location`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "DriverLocationAcknowledgedEvent".
 */
export interface DriverLocationAcknowledgedEvent {
data: LocationAckData
event: "driver:location_acknowledged"
}
/**
 * Payload of `driver:location_acknowledged`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "LocationAckData".
 */
export interface LocationAckData {
accepted: boolean
etaMinutes?: number
orderId: OrderId
reason?: LocationRejection
retryAfterMs?: number
seq?: number
}
/**
 * Answer to `ping`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "PongEvent".
 */
export interface PongEvent {
data: PongData
event: "pong"
}
/**
 * Payload of `pong`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "PongData".
 */
export interface PongData {
serverTime: string
}
/**
 * Answer to `resume`, after the replayed events.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ResumedEvent".
 */
export interface ResumedEvent {
data: ResumedData
event: "resumed"
}
/**
 * Payload of `resumed`: the answer to `resume`, after the replayed events.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ResumedData".
 */
export interface ResumedData {
/**
 * Whether every event after the client's cursor was replayed.
 */
continuity: Continuity1
/**
 * The user's newest position: keep it as the last cursor.
 */
cursor: string
/**
 * How many events were replayed before this answer.
 */
replayed: number
}
/**
 * A refusal.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ErrorEvent".
 */
export interface ErrorEvent {
data: ErrorData
event: "error"
}
/**
 * Payload of `error`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "ErrorData".
 */
export interface ErrorData {
code: ErrorCode
message: string
/**
 * For `rate_limited`: send again after this many milliseconds.
 */
retryAfterMs?: number
}
/**
 * A new order, to its chef.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "OrderNewEvent".
 */
export interface OrderNewEvent {
data: OrderNewData
event: "order:new"
}
/**
 * Payload of `order:new` (to the chef).
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "OrderNewData".
 */
export interface OrderNewData {
createdAt: string
/**
 * Through a user room only: the user's inbox position after this event.
 */
cursor?: string
customerName: string
items: OrderItem[]
notes?: string
orderId: OrderId
orderNumber: string
/**
 * Only on a replay (`resume`, `subscribe:order` with `sinceSeq`).
 */
replayed?: boolean
seq: number
status: OrderStatus
}
/**
 * One line of an order.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "OrderItem".
 */
export interface OrderItem {
/**
 * Dish name.
 */
name: string
/**
 * How many.
 */
quantity: number
}
/**
 * A status change, to the order room and admins.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "OrderStatusUpdateEvent".
 */
export interface OrderStatusUpdateEvent {
data: StatusUpdateData
event: "order:status_update"
}
/**
 * Payload of `order:status_update`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "StatusUpdateData".
 */
export interface StatusUpdateData {
changedBy?: UserId1
/**
 * Through a user room only: the user's inbox position after this event.
 */
cursor?: string
orderId: OrderId
orderNumber: string
previousStatus: OrderStatus
/**
 * The `seq` of the order's previous status update (its creation for the first): a client
 * that has not seen that one missed a status update. Absent for orders written before it
 * was recorded.
 */
previousStatusSeq?: number
reason?: string
/**
 * Only on a replay (`resume`, `subscribe:order` with `sinceSeq`).
 */
replayed?: boolean
seq: number
status: OrderStatus
timestamp: string
}
/**
 * A new assignment, to the driver.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "DriverNewAssignmentEvent".
 */
export interface DriverNewAssignmentEvent {
data: NewAssignmentData
event: "driver:new_assignment"
}
/**
 * Payload of `driver:new_assignment` (to the driver).
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "NewAssignmentData".
 */
export interface NewAssignmentData {
assignedAt: string
/**
 * Through a user room only: the user's inbox position after this event.
 */
cursor?: string
dropoff: Stop
items: OrderItem[]
notes?: string
orderId: OrderId
orderNumber: string
pickup: Stop
/**
 * Only on a replay (`resume`, `subscribe:order` with `sinceSeq`).
 */
replayed?: boolean
seq: number
}
/**
 * A place in an assignment.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "Stop".
 */
export interface Stop {
address: string
latitude: number
longitude: number
name: string
}
/**
 * A driver position, to the order room.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "DriverLocationUpdateEvent".
 */
export interface DriverLocationUpdateEvent {
data: LocationUpdateData
event: "driver:location_update"
}
/**
 * Payload of `driver:location_update`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "LocationUpdateData".
 */
export interface LocationUpdateData {
driverId: UserId
heading?: number
latitude: number
longitude: number
orderId: OrderId
seq: number
speed?: number
timestamp: string
}
/**
 * A changed ETA, to the order room.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "OrderEtaUpdateEvent".
 */
export interface OrderEtaUpdateEvent {
data: EtaUpdateData
event: "order:eta_update"
}
/**
 * Payload of `order:eta_update`.
 * 
 * This interface was referenced by `Protocol`'s JSON-Schema
 * via the `definition` "EtaUpdateData".
 */
export interface EtaUpdateData {
estimatedDeliveryTime: string
/**
 * The driver's arrival at the chef, while on the way there.
 */
estimatedPickupTime?: string
etaMinutes: number
/**
 * `route`: along a routing provider's route; `estimate`: the offline estimate.
 */
etaSource: EtaSource1
orderId: OrderId
seq: number
}
