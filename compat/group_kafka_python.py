"""kafka-python group consumer for the compatibility suite.

usage: group_kafka_python.py BOOTSTRAP GROUP TOPIC COUNT

Joins GROUP with KafkaConsumer(group_id=...), reads COUNT records from the
group's committed offsets (earliest where none), prints each as a JSON line
{"p": partition, "o": offset, "v": value}, commits synchronously and closes
(leaving the group). Exits 1 if COUNT records do not arrive in time."""

import json
import sys
import time

from kafka import KafkaConsumer

TIMEOUT = 45.0  # seconds; below the Go side's limit


def main():
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        sys.exit(2)
    bootstrap, group, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="weir-compat-kafka-python",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    got = 0
    deadline = time.monotonic() + TIMEOUT
    while got < count and time.monotonic() < deadline:
        for _, msgs in c.poll(timeout_ms=250).items():
            for m in msgs:
                json.dump({"p": m.partition, "o": m.offset, "v": m.value.decode()}, sys.stdout)
                sys.stdout.write("\n")
                got += 1
    sys.stdout.flush()
    c.commit()
    c.close()
    if got < count:
        sys.stderr.write("read %d of %d records before the deadline\n" % (got, count))
        sys.exit(1)


if __name__ == "__main__":
    main()
