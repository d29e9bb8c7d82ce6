package streamhouse.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A two-member consumer group with the Java client's DEFAULT assignors (range, then
 * cooperative-sticky: the group settles on range, the classic eager protocol). Both consumers are
 * polled in turn from one thread (each KafkaConsumer is used by this thread only).
 *
 * usage: GroupMembers BOOTSTRAP TOPIC GROUP PARTITIONS N
 *
 * Phase 1: A joins, then B; once they split the partitions, N records are produced; both consume and
 * commitSync() what each poll returned. Phase 2: B closes (LeaveGroup); A takes every partition;
 * N more records, A consumes and commits them. Phase 3: a NEW consumer B2 joins; once A and B2
 * split the partitions, N more records; both consume and commit. Each phase ends when the
 * committed offsets reach the end offsets.
 *
 * Prints one JSON event per line: {"ev":"assign","m":..,"phase":..,"parts":[..]},
 * {"ev":"rec","m":..,"phase":..,"p":..,"o":..,"v":..}, {"ev":"commit","m":..,"p":..,"o":..},
 * {"ev":"phase","phase":..,"end":{"p":o,..}}, and finally {"ev":"done"}; "PROBLEM ..." lines and
 * exit code 1 when a step times out.
 */
public final class GroupMembers {
    private static final long STEP_MS = 30_000;

    private static String topic;
    private static int partitions;
    private static int phase = 0;
    private static final Map<String, Set<Integer>> lastAssignment = new HashMap<>();

    private static void out(String json) {
        System.out.println(json);
        System.out.flush();
    }

    private static KafkaConsumer<String, String> consumer(String bootstrap, String group, String name) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cp.put(ConsumerConfig.CLIENT_ID_CONFIG, "compat-java-" + name);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6000);
        cp.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000);
        cp.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 20000);
        cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100);
        cp.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        KafkaConsumer<String, String> c = new KafkaConsumer<>(cp);
        c.subscribe(Collections.singletonList(topic));
        return c;
    }

    /** One poll of one member: logs assignment changes and records, commits what it got. */
    private static void pollOnce(String name, KafkaConsumer<String, String> c) {
        ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(100));
        Set<Integer> now = new TreeSet<>();
        for (TopicPartition tp : c.assignment()) {
            now.add(tp.partition());
        }
        if (!now.equals(lastAssignment.get(name))) {
            lastAssignment.put(name, now);
            out("{\"ev\":\"assign\",\"m\":\"" + name + "\",\"phase\":" + phase + ",\"parts\":" + now + "}");
        }
        if (recs.isEmpty()) {
            return;
        }
        Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
        for (ConsumerRecord<String, String> r : recs) {
            out("{\"ev\":\"rec\",\"m\":\"" + name + "\",\"phase\":" + phase + ",\"p\":" + r.partition()
                    + ",\"o\":" + r.offset() + ",\"v\":\"" + r.value() + "\"}");
            commit.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        try {
            c.commitSync(commit, Duration.ofSeconds(20));
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : commit.entrySet()) {
                out("{\"ev\":\"commit\",\"m\":\"" + name + "\",\"p\":" + e.getKey().partition() + ",\"o\":"
                        + e.getValue().offset() + "}");
            }
        } catch (RuntimeException e) {
            out("{\"ev\":\"commit_failed\",\"m\":\"" + name + "\",\"error\":\""
                    + e.getClass().getSimpleName() + "\"}");
        }
    }

    private static boolean split(Map<String, KafkaConsumer<String, String>> members) {
        Set<Integer> union = new HashSet<>();
        int total = 0;
        for (String name : members.keySet()) {
            Set<Integer> a = lastAssignment.getOrDefault(name, Collections.emptySet());
            if (a.isEmpty()) {
                return false;
            }
            union.addAll(a);
            total += a.size();
        }
        return union.size() == partitions && total == partitions;
    }

    private static void pollUntil(Map<String, KafkaConsumer<String, String>> members, String what,
                                  java.util.function.BooleanSupplier done) {
        long deadline = System.currentTimeMillis() + STEP_MS;
        while (!done.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                System.out.println("PROBLEM phase " + phase + ": timed out waiting for " + what
                        + "; assignments " + lastAssignment);
                System.exit(1);
            }
            for (Map.Entry<String, KafkaConsumer<String, String>> e : members.entrySet()) {
                pollOnce(e.getKey(), e.getValue());
            }
        }
    }

    private static Map<Integer, Long> produce(KafkaProducer<String, String> p, int n, String tag) throws Exception {
        List<java.util.concurrent.Future<org.apache.kafka.clients.producer.RecordMetadata>> fs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            fs.add(p.send(new ProducerRecord<>(topic, i % partitions, null, tag + "-" + i)));
        }
        p.flush();
        Map<Integer, Long> end = new HashMap<>();
        for (java.util.concurrent.Future<org.apache.kafka.clients.producer.RecordMetadata> f : fs) {
            org.apache.kafka.clients.producer.RecordMetadata md = f.get();
            end.merge(md.partition(), md.offset() + 1, Math::max);
        }
        return end;
    }

    private static boolean committedReached(Map<String, KafkaConsumer<String, String>> members, Map<Integer, Long> end) {
        // any member can read the group's committed offsets
        KafkaConsumer<String, String> any = members.values().iterator().next();
        Set<TopicPartition> tps = new HashSet<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        Map<TopicPartition, OffsetAndMetadata> committed = any.committed(tps, Duration.ofSeconds(10));
        for (Map.Entry<Integer, Long> e : end.entrySet()) {
            OffsetAndMetadata om = committed.get(new TopicPartition(topic, e.getKey()));
            if (om == null || om.offset() < e.getValue()) {
                return false;
            }
        }
        return true;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: GroupMembers BOOTSTRAP TOPIC GROUP PARTITIONS N");
            System.exit(2);
        }
        String bootstrap = args[0];
        topic = args[1];
        String group = args[2];
        partitions = Integer.parseInt(args[3]);
        int n = Integer.parseInt(args[4]);
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            Map<String, KafkaConsumer<String, String>> members = new java.util.LinkedHashMap<>();
            // phase 1: A and B
            phase = 1;
            members.put("A", consumer(bootstrap, group, "A"));
            // B joins once A holds the group
            pollUntil(members, "A alone to hold every partition", () -> split(members));
            members.put("B", consumer(bootstrap, group, "B"));
            pollUntil(members, "A and B to split the partitions", () -> split(members));
            Map<Integer, Long> end = produce(producer, n, "p1");
            out("{\"ev\":\"phase\",\"phase\":1,\"end\":" + json(end) + "}");
            final Map<Integer, Long> end1 = end;
            pollUntil(members, "phase 1 commits", () -> committedReached(members, end1));

            // phase 2: B leaves
            phase = 2;
            members.remove("B").close(Duration.ofSeconds(20));
            lastAssignment.remove("B");
            pollUntil(members, "A to take every partition", () -> split(members));
            end = produce(producer, n, "p2");
            out("{\"ev\":\"phase\",\"phase\":2,\"end\":" + json(end) + "}");
            final Map<Integer, Long> end2 = end;
            pollUntil(members, "phase 2 commits", () -> committedReached(members, end2));

            // phase 3: a new consumer B2 joins
            phase = 3;
            members.put("B2", consumer(bootstrap, group, "B2"));
            pollUntil(members, "A and B2 to split the partitions", () -> split(members));
            end = produce(producer, n, "p3");
            out("{\"ev\":\"phase\",\"phase\":3,\"end\":" + json(end) + "}");
            final Map<Integer, Long> end3 = end;
            pollUntil(members, "phase 3 commits", () -> committedReached(members, end3));
            phase = 4; // what happens while the members leave is not part of phase 3
            for (KafkaConsumer<String, String> c : members.values()) {
                c.close(Duration.ofSeconds(20));
            }
        }
        out("{\"ev\":\"done\"}");
    }

    private static String json(Map<Integer, Long> m) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<Integer, Long> e : m.entrySet()) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            sb.append('"').append(e.getKey()).append("\":").append(e.getValue());
        }
        return sb.append('}').toString();
    }
}
