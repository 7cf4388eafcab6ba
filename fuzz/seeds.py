#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (fuzz/corpus/<target>/seed-*) from the repo's
fixtures: the Lambda events in events/ and the request bodies the tests send. Run it again after
changing a fixture; it only writes files named seed-*, so what a run merged into the corpus stays.

    python3 fuzz/seeds.py
"""
import base64
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data)


def events(kind):
    for path in sorted((ROOT / "events" / kind).glob("*.json")):
        yield path.stem, json.loads(path.read_text())


def cursor(user, epoch, position):
    tag = 0x811C9DC5
    for byte in user.encode():
        tag = ((tag ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{epoch:012x}-{position:012x}-{tag:08x}"


def b64url_json(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


# ws_message: each WebSocket proxy event whole, its frame alone, and frames of every field.
for name, event in events("websocket"):
    if name.startswith("authorizer-"):
        continue
    write("ws_message", f"event-{name}", compact(event))
    if event.get("body"):
        write("ws_message", f"frame-{name}", event["body"].encode())
frames = {
    "location-epoch-ms": {"action": "driver:location", "orderId": "order-1", "latitude": -33.9,
                          "longitude": 151.2, "recordedAt": 1769817659000, "ack": "refusals"},
    "location-future": {"action": "driver:location", "orderId": "order-1", "latitude": 0,
                        "longitude": 0, "heading": 359.9, "recordedAt": "2099-01-01T00:00:00+02:00"},
    "resume-cursor": {"action": "resume", "cursor": cursor("customer-1", 1, 7)},
    "resume-old-epoch": {"action": "resume", "cursor": cursor("customer-1", 0, 0)},
    "unsubscribe": {"action": "unsubscribe:order", "orderId": "order-1"},
    "ping": {"action": "ping"},
}
for name, frame in frames.items():
    write("ws_message", f"frame-{name}", compact(frame))

# stream_record: every stream event of events/stream, compact.
for name, event in events("stream"):
    write("stream_record", name, compact(event))

# authorizer_token: mode 0 the authorizer events; 1 their tokens' claims, at each place; 2 the
# header; 3 the tokens as text.
tokens = {}
for name, event in events("websocket"):
    if not name.startswith("authorizer-"):
        continue
    write("authorizer_token", f"event-{name}", b"\x00" + compact(event))
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    candidates = [
        (event.get("queryStringParameters") or {}).get("token"),
        headers.get("authorization", "").removeprefix("Bearer "),
        *[p.strip().removeprefix("bearer.") for p in headers.get("sec-websocket-protocol", "").split(",")],
    ]
    for token in candidates:
        if token and token.count(".") == 2:
            tokens[name] = token
for name, token in tokens.items():
    header, payload, _ = token.split(".")
    for place in range(3):
        write("authorizer_token", f"claims-{name}-at-{place}", bytes([1 + 4 * place]) + compact(b64url_json(payload)))
    write("authorizer_token", f"header-{name}", b"\x02" + compact(b64url_json(header)))
    write("authorizer_token", f"token-{name}", b"\x03" + token.encode())
write("authorizer_token", "header-kid", b"\x02" + compact({"alg": "HS256", "typ": "JWT", "kid": "k1"}))

# http_bodies: byte 0 the request, byte 1 the role (0 customer, 1 chef, 2 driver, 3 admin) and
# content type (+4 each); then the body the fixtures and tests send.
def http_body(name):
    event = json.loads((ROOT / "events" / "http" / f"{name}.json").read_text())
    return event["body"].encode()


http = {
    "create-order": (0, 0, http_body("create-order")),
    "create-order-bare": (0, 0, compact({"chefId": "chef-1", "deliveryAddress": "x",
                                         "deliveryLatitude": 0, "deliveryLongitude": 0})),
    "create-order-wrong-content-type": (0, 12, http_body("create-order")),
    "assign-driver": (1, 3, http_body("assign-driver")),
    "cancel-order": (2, 0, http_body("cancel-order")),
    "put-profile-chef": (3, 1, http_body("put-profile-chef")),
    "put-profile-customer": (3, 4, compact({"name": "Ada Customer", "phone": "+1 512 555 0199"})),
    "register-device": (4, 8, compact({"token": "dXa1b2C3d4E5:APA91bH-example", "platform": "android",
                                        "appVersion": "1.4.0", "locale": "es-MX"})),
    "list-orders": (5, 0, b"limit=5"),
    "list-orders-cursor": (5, 3, b"limit=100&cursor=abc"),
}
for name, (which, who, body) in http.items():
    write("http_bodies", name, bytes([which, who]) + body)
