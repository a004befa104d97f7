"""One consumer-group member for the compatibility suite, with
confluent-kafka-python (librdkafka). It reports what it does as JSON lines,
in the same format as the Go members (compat/groupmember):

  {"m": NAME, "ev": "assigned"|"revoked", "gen": -1, "ps": [partitions]}
  {"m": NAME, "ev": "rec", "p": P, "o": O}       processed, before its commit
  {"m": NAME, "ev": "commit", "p": P, "o": O}    committed (next to read)

usage: group_confluent_member.py BOOTSTRAP GROUP TOPIC NAME [INSTANCE_ID]

Offsets are committed synchronously after each processed batch. SIGTERM
closes the consumer (a dynamic member leaves the group). librdkafka does
not expose the generation, so gen is -1."""

import json
import signal
import sys

from confluent_kafka import Consumer, KafkaError, KafkaException

stopping = False


def main():
    if len(sys.argv) not in (5, 6):
        sys.stderr.write(__doc__)
        sys.exit(2)
    bootstrap, group, topic, name = sys.argv[1:5]
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": name,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "enable.partition.eof": False,
    }
    if len(sys.argv) == 6:
        conf["group.instance.id"] = sys.argv[5]

    def emit(obj):
        obj["m"] = name
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def reporter(ev):
        def cb(consumer, parts):
            ps = sorted(p.partition for p in parts if p.topic == topic)
            if ps:
                emit({"ev": ev, "gen": -1, "ps": ps})
        return cb

    def stop(signum, frame):
        global stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    c = Consumer(conf)
    c.subscribe(
        [topic],
        on_assign=reporter("assigned"),
        on_revoke=reporter("revoked"),
        on_lost=reporter("revoked"),
    )
    while not stopping:
        msgs = c.consume(num_messages=500, timeout=0.25)
        done = 0
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    sys.stderr.write("consume: %s\n" % err)
                continue
            emit({"ev": "rec", "p": m.partition(), "o": m.offset()})
            done += 1
        if done == 0:
            continue
        try:
            for tp in c.commit(asynchronous=False) or []:
                if tp.error is None and tp.offset >= 0 and tp.topic == topic:
                    emit({"ev": "commit", "p": tp.partition, "o": tp.offset})
        except KafkaException as e:
            sys.stderr.write("commit: %s\n" % e)
    c.close()


if __name__ == "__main__":
    main()
