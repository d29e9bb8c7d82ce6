// kafkajs 2.2.4 driver for the StreamHouse compatibility suite.
//
// usage: node produce.js BOOTSTRAP TOPIC COUNT [PARTITIONS]
// Creates TOPIC with PARTITIONS (default 3) through the admin client, sends COUNT keyed messages
// with acks=-1 in batches, and prints one JSON object on stdout:
//   {"created": bool, "topics": [...], "partitions": n, "results": [RecordMetadata...], "sent": n}
// Exits non-zero on any error. Logs go to stderr.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, countArg, partitionsArg] = process.argv.slice(2);
  if (!bootstrap || !topic || !countArg) {
    console.error('usage: node produce.js BOOTSTRAP TOPIC COUNT [PARTITIONS]');
    process.exit(2);
  }
  const count = parseInt(countArg, 10);
  const numPartitions = parseInt(partitionsArg || '3', 10);

  const kafka = new Kafka({
    clientId: 'compat-kafkajs',
    brokers: [bootstrap],
    connectionTimeout: 5000,
    requestTimeout: 20000,
    retry: { retries: 5, initialRetryTime: 200 },
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, label, log }) => {
      const { message, ...extra } = log;
      console.error(`[kafkajs ${label}] ${namespace}: ${message} ${JSON.stringify(extra)}`);
    },
  });

  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    waitForLeaders: true,
    timeout: 20000,
    topics: [{ topic, numPartitions, replicationFactor: 1 }],
  });
  const topics = await admin.listTopics();
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitions = md.topics[0].partitions.length;
  await admin.disconnect();

  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const results = [];
  const batch = 100;
  for (let start = 0; start < count; start += batch) {
    const messages = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      messages.push({
        key: `key-${i % 31}`,
        value: `kafkajs-value-${i}`,
        headers: { seq: String(i) },
      });
    }
    const res = await producer.send({ topic, acks: -1, timeout: 20000, messages });
    results.push(...res);
  }
  await producer.disconnect();

  process.stdout.write(JSON.stringify({ created, topics, partitions, results, sent: count }) + '\n');
}

main().catch((err) => {
  console.error('kafkajs driver failed:', err && err.stack ? err.stack : err);
  process.exit(1);
});
