// The record table as the feed fills it: which tasks have records, under
// which names, and how answers change (their versions) as tasks do.

#include "services/dns/record_table.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

using namespace tessera::dns;

namespace {

TaskFacts task(const std::string& id, const std::string& name, const std::string& agent,
               std::vector<uint16_t> ports = {}, bool listed = true,
               const std::string& framework = "fw-1") {
  TaskFacts t;
  t.framework_id = framework;
  t.task_id = id;
  t.name = name;
  t.agent_id = agent;
  t.ports = std::move(ports);
  t.listed = listed;
  return t;
}

std::set<std::string> addresses(const RecordTable& table, const std::string& name,
                                uint16_t type = type_a) {
  std::set<std::string> out;
  for (const auto& ip : table.lookup(name, type).addresses)
    out.insert(ip.to_string());
  return out;
}

std::set<std::string> services(const RecordTable& table, const std::string& name) {
  std::set<std::string> out;
  for (const auto& s : table.lookup(name, type_srv).services)
    out.insert(std::to_string(s.port) + " " + s.target);
  return out;
}

// Two agents and the framework "web-team" with no tasks yet.
void base(RecordTable& table) {
  table.apply([](RecordTable::Batch& b) {
    b.upsert_agent("S1", "agent@10.0.0.1:5051", "host1");
    b.upsert_agent("S2", "agent@10.0.0.2:5051", "host2");
    b.upsert_framework("fw-1", "Web_Team");
  });
}

}  // namespace

TEST_CASE("dns table: a running task has an A record to its agent and an SRV per port") {
  RecordTable table;
  base(table);
  table.apply([](auto& b) { b.upsert_task(task("t1", "API", "S1", {31000, 31001})); });
  CHECK(addresses(table, "api.web-team") == std::set<std::string>{"10.0.0.1"});
  CHECK(services(table, "_api._tcp.web-team") ==
        std::set<std::string>{"31000 s1.agents", "31001 s1.agents"});
  CHECK(services(table, "_api._udp.web-team").size() == 2);
  // The names exist for the other types too, with no data.
  auto aaaa = table.lookup("api.web-team", type_aaaa);
  CHECK(aaaa.exists);
  CHECK(aaaa.addresses.empty());
  auto srv_as_a = table.lookup("_api._tcp.web-team", type_a);
  CHECK(srv_as_a.exists);
  CHECK(srv_as_a.addresses.empty());
  CHECK_FALSE(table.lookup("other.web-team", type_a).exists);
  CHECK(table.stats().records == 3 + 2);  // A, two SRV, and the two agents' A
}

TEST_CASE("dns table: several instances give one address per agent and every port") {
  RecordTable table;
  base(table);
  table.apply([](auto& b) {
    b.upsert_task(task("t1", "api", "S1", {31000}));
    b.upsert_task(task("t2", "api", "S1", {31001}));
    b.upsert_task(task("t3", "api", "S2", {31000}));
  });
  CHECK(addresses(table, "api.web-team") == std::set<std::string>{"10.0.0.1", "10.0.0.2"});
  CHECK(services(table, "_api._tcp.web-team") ==
        std::set<std::string>{"31000 s1.agents", "31001 s1.agents", "31000 s2.agents"});
}

TEST_CASE("dns table: only listed tasks have records, and an ended task's go") {
  RecordTable table;
  base(table);
  table.apply([](auto& b) { b.upsert_task(task("t1", "api", "S1", {31000}, false)); });
  CHECK_FALSE(table.lookup("api.web-team", type_a).exists);  // STAGING
  table.apply([](auto& b) { b.upsert_task(task("t1", "api", "S1", {31000}, true)); });
  CHECK(table.lookup("api.web-team", type_a).exists);  // RUNNING
  table.apply([](auto& b) { b.upsert_task(task("t1", "api", "S1", {31000}, false)); });
  CHECK_FALSE(table.lookup("api.web-team", type_a).exists);  // unhealthy
  table.apply([](auto& b) { b.upsert_task(task("t1", "api", "S1", {31000}, true)); });
  table.apply([](auto& b) { b.remove_task("fw-1", "t1"); });
  CHECK_FALSE(table.lookup("api.web-team", type_a).exists);  // ended
  CHECK(table.stats().tasks == 0);
}

TEST_CASE("dns table: the apps framework's tasks named by app path are PATH.apps") {
  TableConfig config;
  config.apps_framework = "my-apps";
  RecordTable table(config);
  base(table);
  table.apply([](auto& b) {
    b.upsert_framework("fw-apps", "my-apps");
    b.upsert_task(task("shop_web.1", "/shop/web", "S1", {31000, 31001}, true, "fw-apps"));
    b.upsert_task(task("other.1", "/shop/web", "S2", {}, true, "fw-1"));
  });
  CHECK(addresses(table, "web.shop.apps") == std::set<std::string>{"10.0.0.1"});
  CHECK(services(table, "_web.shop._tcp.apps").size() == 2);
  // Another framework's task of the same name is its own: reversed too,
  // under the framework's name.
  CHECK(addresses(table, "web.shop.web-team") == std::set<std::string>{"10.0.0.2"});
}

TEST_CASE("dns table: agents and the leader have names of their own") {
  RecordTable table;
  base(table);
  table.apply([](auto& b) {
    b.set_leader(Ip::parse("10.0.0.9"), 5050);
    b.upsert_agent("S3", "agent@[fd00::3]:5051", "host3");
  });
  CHECK(addresses(table, "s1.agents") == std::set<std::string>{"10.0.0.1"});
  CHECK(addresses(table, "s3.agents", type_aaaa) == std::set<std::string>{"fd00::3"});
  CHECK(addresses(table, "s3.agents", type_a).empty());
  CHECK(addresses(table, "leader") == std::set<std::string>{"10.0.0.9"});
  CHECK(addresses(table, "master") == std::set<std::string>{"10.0.0.9"});
  CHECK(services(table, "_leader._tcp") == std::set<std::string>{"5050 leader"});
  table.apply([](auto& b) { b.remove_agent("S1"); });
  CHECK_FALSE(table.lookup("s1.agents", type_a).exists);
}

TEST_CASE("dns table: a name's version changes exactly when its answer may") {
  RecordTable table;
  base(table);
  table.apply([](auto& b) {
    b.upsert_task(task("t1", "api", "S1", {31000}));
    b.upsert_task(task("t2", "db", "S2", {31000}));
  });
  auto api = table.lookup("api.web-team", type_a);
  // Unchanged: the answer is not copied again.
  auto again = table.lookup("api.web-team", type_a, api.version);
  CHECK(again.version == api.version);
  CHECK_FALSE(again.filled);
  CHECK(again.addresses.empty());
  // Another name's change leaves it alone.
  table.apply([](auto& b) { b.upsert_task(task("t2", "db", "S2", {31001})); });
  CHECK(table.lookup("api.web-team", type_a, api.version).version == api.version);
  // Its own change moves it.
  table.apply([](auto& b) { b.upsert_task(task("t3", "api", "S2", {31000})); });
  auto moved = table.lookup("api.web-team", type_a, api.version);
  CHECK(moved.version != api.version);
  CHECK(moved.filled);
  CHECK(moved.addresses.size() == 2);
}

TEST_CASE("dns table: a framework named after its tasks came, or renamed, moves their names") {
  RecordTable table;
  base(table);
  table.apply([](auto& b) { b.upsert_task(task("t1", "api", "S1", {}, true, "fw-2")); });
  CHECK(table.stats().names == 0);  // its framework has no name yet
  table.apply([](auto& b) { b.upsert_framework("fw-2", "later"); });
  CHECK(table.lookup("api.later", type_a).exists);
  table.apply([](auto& b) { b.upsert_framework("fw-2", "renamed"); });
  CHECK_FALSE(table.lookup("api.later", type_a).exists);
  CHECK(table.lookup("api.renamed", type_a).exists);
  table.apply([](auto& b) { b.remove_framework("fw-2"); });
  CHECK_FALSE(table.lookup("api.renamed", type_a).exists);
  CHECK(table.stats().tasks == 0);
}

TEST_CASE("dns table: a snapshot built aside replaces the table at once, with newer versions") {
  RecordTable table;
  base(table);
  table.apply([](auto& b) { b.upsert_task(task("t1", "api", "S1")); });
  auto old = table.lookup("api.web-team", type_a);
  auto next = table.successor();
  next->apply([](auto& b) {
    b.upsert_agent("S1", "agent@10.0.0.7:5051", "host1");
    b.upsert_framework("fw-1", "web-team");
    b.upsert_task(task("t1", "api", "S1"));
  });
  // Until it is swapped in, the old answers stand.
  CHECK(addresses(table, "api.web-team") == std::set<std::string>{"10.0.0.1"});
  table.replace_with(*next);
  auto now = table.lookup("api.web-team", type_a, old.version);
  CHECK(now.version != old.version);
  CHECK(addresses(table, "api.web-team") == std::set<std::string>{"10.0.0.7"});
}

TEST_CASE("dns table: tasks past tasks_max are refused and counted") {
  TableConfig config;
  config.tasks_max = 2;
  RecordTable table(config);
  base(table);
  table.apply([](auto& b) {
    b.upsert_task(task("t1", "a", "S1"));
    b.upsert_task(task("t2", "b", "S1"));
    b.upsert_task(task("t3", "c", "S1"));
  });
  CHECK(table.stats().tasks == 2);
  CHECK(table.stats().refused == 1);
  CHECK_FALSE(table.lookup("c.web-team", type_a).exists);
}
