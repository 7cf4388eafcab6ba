"""Measures whether a DynamoDB endpoint lets exactly one of N concurrent conditional writes win.

Starts two moto servers on free loopback ports, moto's own threaded `moto.server` and
`serve.py` (one request at a time), and against each runs ROUNDS rounds of WRITERS threads that
all send, at once, the same conditional `TransactWriteItems` on one fresh item (`Put` with
`attribute_not_exists(pk)`, as the stores' creations do, and an `Update` of a second item
conditioned on its version, as transitions do). DynamoDB lets exactly one writer win each round.
Prints one line per server and kind: rounds with more than one winner, and the most winners.

Run with the test database's virtual environment (boto3 comes with moto):
    target/moto/venv/bin/python tools/moto/race_check.py [--rounds 30] [--writers 20]
"""

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command, port):
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{command} did not listen on {port}")


def client(endpoint):
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(max_pool_connections=64, retries={"max_attempts": 1}),
    )


def race(endpoint, table, writers, items):
    """One round: `writers` threads send `items(i)` at once; returns how many succeeded."""
    barrier = threading.Barrier(writers)
    wins = []
    lock = threading.Lock()

    def write(i):
        c = client(endpoint)
        barrier.wait()
        try:
            c.transact_write_items(TransactItems=items(table, i))
        except ClientError as e:
            if e.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            return
        with lock:
            wins.append(i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(wins)


def measure(name, endpoint, rounds, writers):
    c = client(endpoint)
    table = f"race-{uuid.uuid4().hex}"
    c.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for kind in ("create", "transition"):
        over = 0
        most = 0
        for _ in range(rounds):
            key = uuid.uuid4().hex
            if kind == "create":
                def items(table, i, key=key):
                    return [{"Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": key}, "writer": {"N": str(i)}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }}]
            else:
                c.put_item(TableName=table, Item={"pk": {"S": key}, "seq": {"N": "1"}})

                def items(table, i, key=key):
                    return [{"Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": key}},
                        "UpdateExpression": "SET seq = :next, writer = :w",
                        "ConditionExpression": "seq = :seen",
                        "ExpressionAttributeValues": {
                            ":seen": {"N": "1"}, ":next": {"N": "2"}, ":w": {"N": str(i)},
                        },
                    }}]
            winners = race(endpoint, table, writers, items)
            most = max(most, winners)
            over += winners > 1
        print(f"{name:<22} {kind:<10} rounds with more than one winner: {over}/{rounds}; "
              f"most winners in a round: {most} (DynamoDB: 0/{rounds}, 1)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--writers", type=int, default=20)
    args = parser.parse_args()
    servers = [
        ("moto.server (threaded)", [sys.executable, "-m", "moto.server", "-p"]),
        ("serve.py (one at a time)", [sys.executable, os.path.join(HERE, "serve.py"), "--port"]),
    ]
    for name, command in servers:
        port = free_port()
        proc = start(command + [str(port)], port)
        try:
            measure(name, f"http://127.0.0.1:{port}", args.rounds, args.writers)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
