(ns kcqrs.examples.orders-client
  "Sends two CreateOrder commands to the orders example
  (examples/orders/topology.yaml) with the Kafka Java client, one accepted and
  one rejected (quantity 0), follows their outcomes on orders.events and
  orders.rejections by commandId, and reads the read model back over HTTP with
  read-your-writes. Exits 1 saying what was not seen.

  Environment: KCQRS_BOOTSTRAP (default localhost:9092), KCQRS_HTTP (default
  http://127.0.0.1:8080), KCQRS_CLIENT_TIMEOUT_MS (default 30000)."
  (:require [clojure.data.json :as json])
  (:import (java.net URI URLEncoder)
           (java.net.http HttpClient HttpRequest HttpResponse$BodyHandlers)
           (java.nio.charset StandardCharsets)
           (java.time Duration)
           (java.util Base64 Properties UUID)
           (org.apache.kafka.clients.consumer ConsumerConfig KafkaConsumer)
           (org.apache.kafka.clients.producer KafkaProducer ProducerConfig ProducerRecord
                                              RecordMetadata)
           (org.apache.kafka.common TopicPartition)
           (org.apache.kafka.common.serialization StringDeserializer StringSerializer))
  (:gen-class))

(def commands-topic "orders.commands")
(def events-topic "orders.events")
(def rejections-topic "orders.rejections")

;; The article's shapes are maps with kebab-case keys; the wire is JSON with
;; the orders example's field names.
(def wire->key {"orderId" :order-id "product" :product "quantity" :quantity
                "status" :status "commandId" :command-id "code" :code
                "reason" :reason "type" :type})
(def key->wire (into {} (map (fn [[w k]] [k w])) wire->key))

(defn ->wire [m] (json/write-str (update-keys m key->wire)))
(defn <-wire [s] (-> (json/read-str s)
                     (select-keys (keys wire->key))
                     (update-keys wire->key)))

(defn fail! [& msg]
  (throw (ex-info (apply str msg) {::failure true})))

(defn env [name default]
  (let [v (System/getenv name)] (if (seq v) v default)))

(defn props ^Properties [m]
  (doto (Properties.) (.putAll m)))

;; Idempotent: a retry after a lost acknowledgement is not written twice. The
;; default partitioner hashes the key (the order id) with murmur2, as kcqrs expects.
(defn producer ^KafkaProducer [bootstrap]
  (KafkaProducer. (props {ProducerConfig/BOOTSTRAP_SERVERS_CONFIG bootstrap
                          ProducerConfig/ENABLE_IDEMPOTENCE_CONFIG "true"
                          ProducerConfig/ACKS_CONFIG "all"
                          ProducerConfig/KEY_SERIALIZER_CLASS_CONFIG (.getName StringSerializer)
                          ProducerConfig/VALUE_SERIALIZER_CLASS_CONFIG (.getName StringSerializer)})))

;; Committed events and rejections only (kcqrs writes them in transactions),
;; from the end of each partition as it is before the commands are sent.
(defn outcome-consumer ^KafkaConsumer [bootstrap]
  (let [consumer (KafkaConsumer.
                  (props {ConsumerConfig/BOOTSTRAP_SERVERS_CONFIG bootstrap
                          ConsumerConfig/ISOLATION_LEVEL_CONFIG "read_committed"
                          ConsumerConfig/ENABLE_AUTO_COMMIT_CONFIG "false"
                          ConsumerConfig/KEY_DESERIALIZER_CLASS_CONFIG (.getName StringDeserializer)
                          ConsumerConfig/VALUE_DESERIALIZER_CLASS_CONFIG (.getName StringDeserializer)}))
        partitions (doall
                    (for [topic [events-topic rejections-topic]
                          :let [infos (seq (.partitionsFor consumer ^String topic (Duration/ofSeconds 10)))]
                          info (or infos
                                   (do (.close consumer)
                                       (fail! "no topic " topic " at " bootstrap
                                              ": is kcqrs running examples/orders/topology.yaml there?")))]
                      (TopicPartition. (.topic info) (.partition info))))]
    (.assign consumer partitions)
    (.seekToEnd consumer partitions)
    ;; seekToEnd is lazy: fix the positions now, before the commands exist.
    (doseq [tp partitions] (.position consumer ^TopicPartition tp (Duration/ofSeconds 10)))
    consumer))

;; Keyed by the aggregate id: every command of one order lands on one partition.
(defn send-command ^RecordMetadata [^KafkaProducer producer command command-id]
  (let [value (->wire (assoc command :type "CreateOrder" :command-id command-id))]
    (.get (.send producer (ProducerRecord. commands-topic (:order-id command) value)))))

;; The position of a command, as POST /commands answers it: base64url,
;; unpadded, of {"t": topic, "p": partition, "o": offset} (docs/http-api.md).
(defn position-token [^RecordMetadata at]
  (.encodeToString (.withoutPadding (Base64/getUrlEncoder))
                   (.getBytes (json/write-str {"t" (.topic at) "p" (.partition at) "o" (.offset at)})
                              StandardCharsets/UTF_8)))

(defn get-order [^HttpClient client http order-id position]
  (let [uri (URI/create (str http "/stores/orders/keys/"
                             (URLEncoder/encode ^String order-id StandardCharsets/UTF_8)
                             "?position=" position))
        response (.send client (-> (HttpRequest/newBuilder uri)
                                   (.timeout (Duration/ofSeconds 15)) (.GET) (.build))
                        (HttpResponse$BodyHandlers/ofString))]
    {:status (.statusCode response) :body (.body response)}))

(defn command-id-of [record]
  (when-let [h (.lastHeader (.headers record) "kcqrs.command.id")]
    (String. (.value h) StandardCharsets/UTF_8)))

;; Follows the outcomes until both are seen or the time is up: an event or a
;; rejection names the command that caused it.
(defn follow-outcomes [^KafkaConsumer consumer accepted-id rejected-id timeout-ms]
  (let [deadline (+ (System/currentTimeMillis) timeout-ms)]
    (loop [seen {}]
      (if (or (and (:event seen) (:rejection seen))
              (> (System/currentTimeMillis) deadline))
        seen
        (recur
         (reduce
          (fn [seen record]
            (if (= events-topic (.topic record))
              (condp = (command-id-of record)
                rejected-id (fail! "command " rejected-id " (quantity 0) was accepted: " (.value record))
                accepted-id (assoc seen :event (<-wire (.value record)))
                seen)
              (let [rejection (<-wire (.value record))]
                (condp = (:command-id rejection)
                  accepted-id (fail! "command " accepted-id " was rejected: " (.value record))
                  rejected-id (assoc seen :rejection rejection)
                  seen))))
          seen
          (.poll consumer (Duration/ofMillis 200))))))))

(defn run []
  (let [bootstrap (env "KCQRS_BOOTSTRAP" "localhost:9092")
        http (env "KCQRS_HTTP" "http://127.0.0.1:8080")
        timeout-ms (parse-long (env "KCQRS_CLIENT_TIMEOUT_MS" "30000"))
        run-id (subs (str (UUID/randomUUID)) 0 8)
        ;; The article's command map, and one the aggregate refuses: quantity must be > 0.
        create-order-command {:order-id (str "clojure-" run-id "-1") :product "Widget" :quantity 10}
        refused-command {:order-id (str "clojure-" run-id "-2") :product "Widget" :quantity 0}
        accepted-id (str "clojure-" run-id "-c1")
        rejected-id (str "clojure-" run-id "-c2")]
    (with-open [outcomes (outcome-consumer bootstrap)
                producer (producer bootstrap)]
      (let [accepted-at (send-command producer create-order-command accepted-id)
            rejected-at (send-command producer refused-command rejected-id)
            _ (println (format "sent %s to %s-%d@%d, %s to %s-%d@%d"
                               accepted-id (.topic accepted-at) (.partition accepted-at) (.offset accepted-at)
                               rejected-id (.topic rejected-at) (.partition rejected-at) (.offset rejected-at)))
            {:keys [event rejection]} (follow-outcomes outcomes accepted-id rejected-id timeout-ms)
            ;; The article's event map.
            order-created-event (dissoc event :type)]
        (when-not event
          (fail! "no OrderCreated event for command " accepted-id " on " events-topic
                 " within " timeout-ms " ms"))
        (when-not rejection
          (fail! "no rejection for command " rejected-id " on " rejections-topic
                 " within " timeout-ms " ms"))
        (println "event:    " (pr-str order-created-event) "for" accepted-id)
        (println "rejection:" (pr-str rejection))
        (when (not= order-created-event create-order-command)
          (fail! "event " order-created-event " does not match the command " create-order-command))
        (when (not= "invalid" (:code rejection))
          (fail! "rejection code is " (:code rejection) ", expected invalid"))
        ;; Read-your-writes: the query waits until the store has applied the command.
        (let [client (-> (HttpClient/newBuilder) (.connectTimeout (Duration/ofSeconds 5)) (.build))
              view (get-order client http (:order-id create-order-command) (position-token accepted-at))
              _ (when (not= 200 (:status view))
                  (fail! "GET /stores/orders/keys/" (:order-id create-order-command) " answered "
                         (:status view) ": " (:body view)))
              read-model (<-wire (:body view))
              none (get-order client http (:order-id refused-command) (position-token rejected-at))]
          (println "view:     " (pr-str read-model))
          (when (not= read-model (assoc create-order-command :status "CREATED"))
            (fail! "the view " (:body view) " does not match the accepted command"))
          (when (not= 404 (:status none))
            (fail! "the rejected order " (:order-id refused-command) " answered " (:status none)
                   " (expected 404): " (:body none)))
          (println "view:     " (:order-id refused-command) "not found, as it was rejected"))))))

(defn -main [& _]
  (try
    (run)
    (println "clojure client: OK")
    (shutdown-agents)
    (System/exit 0)
    (catch Exception e
      (binding [*out* *err*]
        (println "clojure client: FAILED:" (if (::failure (ex-data e)) (ex-message e) (str e))))
      (System/exit 1))))
