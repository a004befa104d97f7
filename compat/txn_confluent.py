"""confluent-kafka-python (librdkafka) transactional client for the
compatibility suite.

usage: txn_confluent.py alternate BOOTSTRAP TOPIC TXNS
       txn_confluent.py zombie BOOTSTRAP TOPIC
       txn_confluent.py consume BOOTSTRAP TOPIC ISOLATION

alternate runs TXNS transactions of 20 records on partition 0 ("t<i>-<j>"),
committing the even ones and aborting the odd ones. zombie starts two
producers with the same transactional.id: the second fences the first,
whose later produce and commit must fail; only the second's record ("fresh")
is committed. consume prints the values of partition 0, one per line, read
with isolation.level ISOLATION until the end of the partition."""

import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

import client_common as cc


def producer(bootstrap, txn_id):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 60000})
    p.init_transactions(cc.TIMEOUT)
    return p


def alternate(bootstrap, topic, txns):
    p = producer(bootstrap, topic + "-alt")
    for i in range(txns):
        p.begin_transaction()
        for j in range(20):
            p.produce(topic, value="t%02d-%02d" % (i, j), partition=0)
        # Flush first: abort_transaction drops records not yet sent, and
        # the aborted records must reach the log for the test.
        p.flush(cc.TIMEOUT)
        if i % 2 == 0:
            p.commit_transaction(cc.TIMEOUT)
        else:
            p.abort_transaction(cc.TIMEOUT)


def zombie(bootstrap, topic):
    old = producer(bootstrap, topic + "-z")
    old.begin_transaction()
    old.produce(topic, value="zombie-before", partition=0)
    old.flush(cc.TIMEOUT)
    fresh = producer(bootstrap, topic + "-z")  # fences old, aborts its transaction
    fresh.begin_transaction()
    fresh.produce(topic, value="fresh", partition=0)
    fresh.commit_transaction(cc.TIMEOUT)
    try:
        old.produce(topic, value="zombie-after", partition=0)
        old.commit_transaction(cc.TIMEOUT)
    except KafkaException as e:
        print("fenced: %s" % e.args[0].name())
        return
    cc.fail(["the fenced producer committed"], "zombie")


def consume(bootstrap, topic, isolation):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "weir-compat-" + topic,
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, 0, 0)])
    end = cc.consume_deadline()
    try:
        while True:
            if time.monotonic() > end:
                cc.fail(["no end of partition before the deadline"], "consume")
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    return
                cc.fail([str(m.error())], "consume")
            print(m.value().decode())
    finally:
        c.close()


def main():
    cmd, bootstrap, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "alternate":
        alternate(bootstrap, topic, int(sys.argv[4]))
    elif cmd == "zombie":
        zombie(bootstrap, topic)
    elif cmd == "consume":
        consume(bootstrap, topic, sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
