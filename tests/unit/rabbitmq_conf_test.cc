// rabbitmq.conf reading (server/rabbitmq_conf.h) and its mapping onto the server's Config
// (server/config.h): every key, units, listeners, precedence, and errors naming the line.
#include "server/rabbitmq_conf.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "server/config.h"

namespace warren::server {
namespace {

TEST(RabbitmqConf, ReadsKeyValueLinesCommentsAndBlanks) {
  std::string error;
  auto e = parse_rabbitmq_conf("# comment\n\n  listeners.tcp.default = 5673  \nlog.file = \"/x y\"\n",
                               &error);
  ASSERT_TRUE(e) << error;
  ASSERT_EQ(e->size(), 2u);
  EXPECT_EQ((*e)[0].key, "listeners.tcp.default");
  EXPECT_EQ((*e)[0].value, "5673");
  EXPECT_EQ((*e)[0].line, 3);
  EXPECT_EQ((*e)[1].value, "/x y");
}

TEST(RabbitmqConf, ALineWithoutEqualsNamesItsLine) {
  std::string error;
  EXPECT_FALSE(parse_rabbitmq_conf("a = 1\nnonsense\n", &error));
  EXPECT_EQ(error, "line 2: expected 'key = value', got 'nonsense'");
}

TEST(RabbitmqConf, SizesWithRabbitmqUnits) {
  EXPECT_EQ(conf_bytes("1024"), 1024u);
  EXPECT_EQ(conf_bytes("2GB"), 2'000'000'000u);
  EXPECT_EQ(conf_bytes("512MiB"), 512ull << 20);
  EXPECT_EQ(conf_bytes("1Gi"), std::nullopt);
  EXPECT_EQ(conf_bytes("3G"), 3ull << 30);
  EXPECT_EQ(conf_bytes("50MB"), 50'000'000u);
  EXPECT_EQ(conf_bytes("1k"), 1024u);
  EXPECT_EQ(conf_bytes("abc"), std::nullopt);
  EXPECT_EQ(conf_bytes("10 parsecs"), std::nullopt);
}

TEST(RabbitmqConf, Listeners) {
  auto l = conf_listener("5673");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->address, "");
  EXPECT_EQ(l->port, 5673);
  l = conf_listener("127.0.0.1:5674");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->address, "127.0.0.1");
  EXPECT_EQ(l->port, 5674);
  l = conf_listener("::1:5675");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->address, "::1");
  l = conf_listener("[::1]:5676");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->address, "::1");
  EXPECT_EQ(l->port, 5676);
  EXPECT_FALSE(conf_listener("127.0.0.1:99999"));
  EXPECT_FALSE(conf_listener("x"));
}

// parse_config over a temporary file and argv.
class ConfigFile : public ::testing::Test {
 protected:
  std::optional<Config> parse(const std::string& text, std::vector<std::string> extra = {},
                              int* exit_code = nullptr) {
    // One file per process: ctest runs these tests in parallel processes.
    path_ = ::testing::TempDir() + "/warren-test-rabbitmq-" + std::to_string(::getpid()) + ".conf";
    std::ofstream(path_) << text;
    std::vector<std::string> args = {"warren-server", "--config", path_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    int code = 0;
    auto c = parse_config(static_cast<int>(argv.size()), argv.data(), &code);
    if (exit_code) *exit_code = code;
    return c;
  }
  std::string path_;
};

TEST_F(ConfigFile, EveryKey) {
  auto c = parse(
      "listeners.tcp.local = 127.0.0.1:5680\n"
      "listeners.tcp.local_v6 = ::1:5680\n"
      "listeners.ssl.default = 5681\n"
      "default_user = admin\n"
      "default_pass = s3cret\n"
      "default_vhost = prod\n"
      "default_user_tags.administrator = false\n"
      "default_user_tags.monitoring = true\n"
      "loopback_users.guest = false\n"
      "loopback_users.local = true\n"
      "heartbeat = 30\n"
      "frame_max = 65536\n"
      "channel_max = 100\n"
      "vm_memory_high_watermark.absolute = 1GB\n"
      "disk_free_limit.absolute = 2GiB\n"
      "ssl_options.cacertfile = /ca.pem\n"
      "ssl_options.certfile = /cert.pem\n"
      "ssl_options.keyfile = /key.pem\n"
      "ssl_options.verify = verify_peer\n"
      "ssl_options.fail_if_no_peer_cert = true\n"
      "log.level = warning\n"
      "log.file = /tmp/w.log\n"
      "log.console = false\n"
      "management.tcp.port = 15673\n"
      "data_dir = /var/lib/warren\n");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->amqp_listeners.size(), 2u);
  EXPECT_EQ(c->amqp_listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c->amqp_listeners[0].port, 5680);
  EXPECT_EQ(c->amqp_listeners[1].address, "::1");
  EXPECT_EQ(c->tls.port, 5681);
  EXPECT_EQ(c->default_access.user, "admin");
  EXPECT_EQ(c->default_access.pass, "s3cret");
  EXPECT_EQ(c->default_access.vhost, "prod");
  EXPECT_EQ(c->default_access.tags, std::vector<std::string>{"monitoring"});
  EXPECT_EQ(c->loopback_users, std::vector<std::string>{"local"});
  EXPECT_EQ(c->limits.heartbeat, 30);
  EXPECT_EQ(c->limits.frame_max, 65536u);
  EXPECT_EQ(c->limits.channel_max, 100);
  EXPECT_EQ(c->limits.memory_high_watermark, 1'000'000'000u);
  EXPECT_EQ(c->limits.disk_free_limit, 2ull << 30);
  EXPECT_EQ(c->tls.cacertfile, "/ca.pem");
  EXPECT_EQ(c->tls.certfile, "/cert.pem");
  EXPECT_EQ(c->tls.keyfile, "/key.pem");
  EXPECT_EQ(c->tls.verify, "verify_peer");
  EXPECT_TRUE(c->tls.fail_if_no_peer_cert);
  EXPECT_EQ(c->log_level, "warn");
  EXPECT_EQ(c->log_file, "/tmp/w.log");
  EXPECT_FALSE(c->log_console);
  EXPECT_EQ(c->management_port, 15673);
  EXPECT_EQ(c->data_dir, "/var/lib/warren");
}

TEST_F(ConfigFile, DefaultsListenOnBothLoopbacks) {
  auto c = parse("");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->amqp_listeners.size(), 2u);
  EXPECT_EQ(c->amqp_listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c->amqp_listeners[1].address, "::1");
  EXPECT_EQ(c->amqp_listeners[0].port, 5672);
  EXPECT_FALSE(c->tls.port);
  EXPECT_EQ(c->loopback_users, std::vector<std::string>{"guest"});
}

TEST_F(ConfigFile, ABarePortListensOnEveryInterfaceAsRabbitmq) {
  auto c = parse("listeners.tcp.default = 5690\n");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->amqp_listeners.size(), 2u);
  EXPECT_EQ(c->amqp_listeners[0].address, "0.0.0.0");
  EXPECT_EQ(c->amqp_listeners[1].address, "::");
  EXPECT_EQ(c->amqp_listeners[1].port, 5690);
}

TEST_F(ConfigFile, FlagsOverrideTheFile) {
  auto c = parse("listeners.tcp.default = 127.0.0.1:5690\nheartbeat = 30\nloopback_users = none\n",
                 {"--heartbeat", "10", "--bind", "127.0.0.1,::1", "--amqp-port", "0"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->limits.heartbeat, 10);
  ASSERT_EQ(c->amqp_listeners.size(), 2u);
  EXPECT_EQ(c->amqp_listeners[1].address, "::1");
  EXPECT_EQ(c->amqp_listeners[1].port, 0);
  EXPECT_TRUE(c->loopback_users.empty());
  // --bind alone keeps the file's port.
  c = parse("listeners.tcp.default = 127.0.0.1:5690\n", {"--bind", "::1"});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->amqp_listeners.size(), 1u);
  EXPECT_EQ(c->amqp_listeners[0].port, 5690);
}

TEST_F(ConfigFile, ACertificateImpliesTheAmqpsPort) {
  auto c = parse("ssl_options.certfile = /c\nssl_options.keyfile = /k\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tls.port, 5671);
}

TEST_F(ConfigFile, StompListensOn61613OfTheAmqpAddressesOnceEnabled) {
  auto c = parse("", {"--bind", "127.0.0.1"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->forced_plugins.count("rabbitmq_stomp"), 0u);  // the plugin decides
  ASSERT_EQ(c->stomp.listeners.size(), 1u);
  EXPECT_EQ(c->stomp.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c->stomp.listeners[0].port, 61613);
  EXPECT_EQ(c->stomp.settings.default_login, "guest");
  EXPECT_EQ(c->stomp.settings.default_vhost, "/");
}

TEST_F(ConfigFile, StompKeys) {
  auto c = parse(
      "stomp.listeners.tcp.1 = 127.0.0.1:61614\n"
      "stomp.default_user = stompy\n"
      "stomp.default_pass = secret\n"
      "stomp.default_vhost = v1\n"
      "stomp.max_frame_size = 65536\n"
      "stomp.default_nack_requeue = false\n"
      "stomp.login_timeout = 5000\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->forced_plugins.count("rabbitmq_stomp"), 0u);
  ASSERT_EQ(c->stomp.listeners.size(), 1u);
  EXPECT_EQ(c->stomp.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c->stomp.listeners[0].port, 61614);
  EXPECT_EQ(c->stomp.settings.default_login, "stompy");
  EXPECT_EQ(c->stomp.settings.default_passcode, "secret");
  EXPECT_EQ(c->stomp.settings.default_vhost, "v1");
  EXPECT_EQ(c->stomp.settings.max_frame_size, 65536u);
  EXPECT_FALSE(c->stomp.settings.default_nack_requeue);
  EXPECT_EQ(c->stomp.settings.login_timeout_ms, 5000u);
  // A bare port listens on every interface, as RabbitMQ.
  c = parse("stomp.listeners.tcp.default = 61613\n");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->stomp.listeners.size(), 2u);
  EXPECT_EQ(c->stomp.listeners[0].address, "0.0.0.0");
  EXPECT_EQ(c->stomp.listeners[1].address, "::");
  int code = 0;
  EXPECT_FALSE(parse("stomp.max_frame_size = big\n", {}, &code));
}

TEST_F(ConfigFile, StompPortFlagListensOnTheAmqpAddresses) {
  auto c = parse("", {"--stomp-port", "0", "--bind", "127.0.0.1"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->forced_plugins.count("rabbitmq_stomp"), 1u);  // on whatever the plugins say
  ASSERT_EQ(c->stomp.listeners.size(), 1u);
  EXPECT_EQ(c->stomp.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c->stomp.listeners[0].port, 0);
  // The flag's port wins over the file's.
  c = parse("stomp.listeners.tcp.1 = ::1:61614\n", {"--stomp-port", "61615"});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->stomp.listeners.size(), 1u);
  EXPECT_EQ(c->stomp.listeners[0].address, "::1");
  EXPECT_EQ(c->stomp.listeners[0].port, 61615);
}

TEST_F(ConfigFile, UnknownKeysAndBadValuesNameTheLine) {
  int code = 0;
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(parse("heartbeat = 5\nno.such.key = 1\n", {}, &code));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "warren-server: config file " + path_ + " line 2: unknown key 'no.such.key'\n");
  EXPECT_EQ(code, 1);
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(parse("# x\nheartbeat = often\n", {}, &code));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "warren-server: config file " + path_ +
                " line 2: 'heartbeat' must be an integer from 0 to 65535, got 'often'\n");
  EXPECT_FALSE(parse("ssl_options.verify = maybe\n", {}, &code));
  EXPECT_FALSE(parse("vm_memory_high_watermark.relative = 1.5\n", {}, &code));
  EXPECT_FALSE(parse("disk_free_limit.absolute = lots\n", {}, &code));
  EXPECT_FALSE(parse("frame_max = 100\n", {}, &code));
  EXPECT_FALSE(parse("loopback_users = guest\n", {}, &code));
}

TEST_F(ConfigFile, MqttKeysAndListeners) {
  auto c = parse(
      "mqtt.listeners.tcp.default = 1884\n"
      "mqtt.vhost = iot\n"
      "mqtt.exchange = mqtt.x\n"
      "mqtt.allow_anonymous = false\n"
      "mqtt.default_user = dev\n"
      "mqtt.default_pass = pw\n"
      "mqtt.prefetch = 50\n"
      "mqtt.subscription_ttl = 3600000\n"
      "mqtt.ignore_colons_in_username = true\n"
      "mqtt.max_packet_size_unauthenticated = 1024\n"
      "mqtt.max_packet_size_authenticated = 1048576\n");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->mqtt_listeners.size(), 2u);  // a bare port: every interface, both families
  EXPECT_EQ(c->mqtt_listeners[0].address, "0.0.0.0");
  EXPECT_EQ(c->mqtt_listeners[0].port, 1884);
  EXPECT_EQ(c->mqtt.vhost, "iot");
  EXPECT_EQ(c->mqtt.exchange, "mqtt.x");
  EXPECT_FALSE(c->mqtt.allow_anonymous);
  EXPECT_EQ(c->mqtt.default_user, "dev");
  EXPECT_EQ(c->mqtt.default_pass, "pw");
  EXPECT_EQ(c->mqtt.prefetch, 50);
  EXPECT_EQ(c->mqtt.max_session_expiry_ms, 3600000u);
  EXPECT_TRUE(c->mqtt.ignore_colons_in_username);
  EXPECT_EQ(c->mqtt.max_packet_size_unauthenticated, 1024u);
  EXPECT_EQ(c->mqtt.max_packet_size_authenticated, 1048576u);
  // TLS listeners only when asked for: mqtt.listeners.ssl.*, stomp.listeners.ssl.*, the flags.
  EXPECT_TRUE(c->mqtt_tls_listeners.empty());
  auto tls = parse("mqtt.listeners.ssl.default = 127.0.0.1:8883\nstomp.listeners.ssl.1 = 61614\n");
  ASSERT_TRUE(tls);
  ASSERT_EQ(tls->mqtt_tls_listeners.size(), 1u);
  EXPECT_EQ(tls->mqtt_tls_listeners[0].port, 8883);
  EXPECT_EQ(tls->stomp.tls_listeners.size(), 2u);  // a bare port: both families
  auto tls_flag = parse("", {"--mqtts-port", "0", "--bind", "127.0.0.1"});
  ASSERT_TRUE(tls_flag);
  ASSERT_EQ(tls_flag->mqtt_tls_listeners.size(), 1u);
  EXPECT_EQ(tls_flag->forced_plugins.count("rabbitmq_mqtt/ssl"), 1u);
  auto ttl = parse("mqtt.subscription_ttl = undefined\n");
  ASSERT_TRUE(ttl);
  EXPECT_EQ(ttl->mqtt.max_session_expiry_ms, UINT64_MAX);
  auto v5 = parse("mqtt.max_session_expiry_interval_seconds = 60\nmqtt.topic_alias_maximum = 0\n");
  ASSERT_TRUE(v5);
  EXPECT_EQ(v5->mqtt.max_session_expiry_ms, 60000u);
  EXPECT_EQ(v5->mqtt.topic_alias_maximum, 0);
  EXPECT_FALSE(parse("mqtt.topic_alias_maximum = 70000\n"));
  EXPECT_FALSE(parse("", {}).value().mqtt.allow_anonymous);  // only when configured
  // Without a listener key, 1883 on the AMQP addresses once the plugin is enabled;
  // --mqtt-port listens on the --bind addresses and forces MQTT on.
  auto defaults = parse("", {"--bind", "127.0.0.1"});
  ASSERT_TRUE(defaults);
  ASSERT_EQ(defaults->mqtt_listeners.size(), 1u);
  EXPECT_EQ(defaults->mqtt_listeners[0].port, 1883);
  EXPECT_EQ(defaults->web_mqtt_port, 15675);
  EXPECT_EQ(defaults->stomp.web_port, 15674);
  EXPECT_TRUE(defaults->forced_plugins.empty());
  auto flag = parse("", {"--mqtt-port", "0", "--bind", "127.0.0.1", "--management-port", "0"});
  ASSERT_TRUE(flag);
  ASSERT_EQ(flag->mqtt_listeners.size(), 1u);
  EXPECT_EQ(flag->mqtt_listeners[0].address, "127.0.0.1");
  EXPECT_EQ(flag->mqtt_listeners[0].port, 0);
  EXPECT_EQ(flag->forced_plugins,
            (std::set<std::string>{"rabbitmq_mqtt", "rabbitmq_management"}));
  int code = 0;
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(parse("mqtt.allow_anonymous = perhaps\n", {}, &code));
  EXPECT_FALSE(parse("mqtt.prefetch = 0\n", {}, &code));
  ::testing::internal::GetCapturedStderr();
}

}  // namespace
}  // namespace warren::server
