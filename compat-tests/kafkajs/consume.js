// kafkajs 2.2.4 consumer-group driver for the StreamHouse compatibility suite.
//
// usage: node consume.js BOOTSTRAP TOPIC GROUP COUNT
// Joins GROUP, subscribes to TOPIC from the beginning, reads until COUNT messages arrived (kafkajs
// commits the offsets as it goes and on disconnect), then prints one JSON object on stdout:
//   {"consumed": n, "messages": [{"partition", "offset", "key", "value", "seq"}...], "committed": [...]}
// Exits non-zero on error or after 60 s without COUNT messages.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic, groupId, countArg] = process.argv.slice(2);
  if (!bootstrap || !topic || !groupId || !countArg) {
    console.error('usage: node consume.js BOOTSTRAP TOPIC GROUP COUNT');
    process.exit(2);
  }
  const count = parseInt(countArg, 10);
  const kafka = new Kafka({
    clientId: 'compat-kafkajs-consumer',
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

  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000,
                                    maxWaitTimeInMs: 500 });
  const messages = [];
  let resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });
  const timer = setTimeout(() => resolveDone('timeout'), 60000);

  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ partition, message }) => {
      messages.push({
        partition,
        offset: message.offset,
        key: message.key ? message.key.toString() : null,
        value: message.value ? message.value.toString() : null,
        seq: message.headers && message.headers.seq ? message.headers.seq.toString() : null,
      });
      if (messages.length >= count) resolveDone('done');
    },
  });
  const outcome = await done;
  clearTimeout(timer);
  await consumer.disconnect(); // commits the offsets of what was processed

  const admin = kafka.admin();
  await admin.connect();
  const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
  await admin.disconnect();

  process.stdout.write(JSON.stringify({ outcome, consumed: messages.length, messages,
                                        committed }) + '\n');
  if (outcome !== 'done') process.exit(1);
}

main().catch((err) => {
  console.error('kafkajs consumer failed:', err && err.stack ? err.stack : err);
  process.exit(1);
});
