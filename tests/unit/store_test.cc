// Store: the same rows, keys and rules on both engines. The SQLite cases
// always run; the PostgreSQL ones when CLONEKIT_TEST_PG_URL names a
// database this test may empty (tests/e2e/postgres/store-unit.sh starts a
// private server and sets it).
#include "store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace clonekit::manager {
namespace {

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      char tmpl[] = "/tmp/clonekit-store-XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      dir_ = tmpl;
      db_ = dir_ + "/state.db";
    } else {
      const char* url = std::getenv("CLONEKIT_TEST_PG_URL");
      if (!url) GTEST_SKIP() << "CLONEKIT_TEST_PG_URL not set (tests/e2e/postgres/store-unit.sh sets it)";
      db_ = url;
      // An empty database for each case.
      PGconn* c = PQconnectdb(url);
      ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
      PGresult* r = PQexec(c, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
      ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
      PQclear(r);
      PQfinish(c);
    }
    Open();
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    Result<std::unique_ptr<Store>> s = Store::Open(db_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(s).value();
  }
  int64_t AddVm(const std::string& name) {
    VmRow vm;
    vm.uuid = "uuid-" + name;
    vm.name = name;
    vm.ns = "default";
    vm.xml = "<domain/>";
    Result<int64_t> id = store_->InsertVm(vm);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : 0;
  }

  std::string dir_, db_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, EngineIsTheOneAsked) { EXPECT_EQ(store_->engine(), GetParam()); }

TEST_P(StoreTest, JobKeepsEveryFieldAcrossAReopen) {
  const int64_t src = AddVm("src"), clone = AddVm("src-clone");
  Result<int64_t> snap = store_->InsertSnapshot({0, src, "s1", "<domainsnapshot/>", "", Consistency::kApplication});
  ASSERT_TRUE(snap.ok());
  JobRow job;
  job.source_vm = src;
  job.clone_vm = clone;
  job.clone_name = "src-clone";
  job.snapshot = "s1";
  job.state = JobState::kRunning;
  job.outputs = {"/pool/src-clone-vda.qcow2", "/pool/é ü.qcow2"};
  job.live = true;
  job.mode = JobMode::kInstant;
  job.generalize = *ParseGeneralize("default,-hostname");
  job.host = "h2";
  job.scratch = {"/pool/.clonekit-u-vda"};
  Result<int64_t> id = store_->InsertJob(job);
  ASSERT_TRUE(id.ok()) << id.status().message();
  job.id = *id;
  job.done_bytes = 5ull << 40;  // past 32 bits: a 64-bit column on both engines
  job.total_bytes = (5ull << 40) + 4096;
  job.percent = 99.999999923;
  job.error = "it's \"quoted\"; with ? and $1";
  job.error_kind = "interrupted";
  job.source_was_running = true;
  job.took_snapshot = true;
  job.switching = "vda=/pool/x-vda-top.qcow2";
  job.identity_changes = {{GeneralizeItem::kMachineId, "vda", "/etc/machine-id", "emptied"}};
  job.scratch.push_back("/pool/.clonekit-u-vdb");
  job.cleanup_pending = true;
  ASSERT_TRUE(store_->UpdateJob(job).ok());
  Open();
  std::optional<JobRow> got = store_->Job(job.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->source_vm, src);
  EXPECT_EQ(got->clone_vm, clone);
  EXPECT_EQ(got->state, JobState::kRunning);
  EXPECT_EQ(got->done_bytes, 5ull << 40);
  EXPECT_EQ(got->total_bytes, (5ull << 40) + 4096);
  EXPECT_DOUBLE_EQ(got->percent, 99.999999923);
  EXPECT_EQ(got->error, job.error);
  EXPECT_EQ(got->error_kind, "interrupted");
  EXPECT_EQ(got->outputs, job.outputs);
  EXPECT_TRUE(got->live && got->source_was_running && got->took_snapshot);
  EXPECT_EQ(got->mode, JobMode::kInstant);
  EXPECT_EQ(got->switching, job.switching);
  EXPECT_EQ(got->generalize.ToString(), job.generalize.ToString());
  ASSERT_EQ(got->identity_changes.size(), 1u);
  EXPECT_EQ(got->identity_changes[0].change, "emptied");
  EXPECT_EQ(got->host, "h2");
  EXPECT_EQ(got->scratch, job.scratch);
  EXPECT_TRUE(got->cleanup_pending);
  std::optional<SnapshotRow> s = store_->SnapshotById(*snap);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->consistency, Consistency::kApplication);
}

TEST_P(StoreTest, AVmKeepsItsHostAndIsLocalUnlessSaid) {
  const int64_t here = AddVm("here");
  VmRow there;
  there.uuid = "00000000-0000-4000-8000-0000000000b2";
  there.name = "there";
  there.ns = "default";
  there.xml = "<domain/>";
  there.host = "h2";
  Result<int64_t> id = store_->InsertVm(there);
  ASSERT_TRUE(id.ok()) << id.status().message();
  Open();
  EXPECT_EQ(store_->Vm(here)->host, "local");
  EXPECT_EQ(store_->Vm(*id)->host, "h2");
  JobRow job;
  job.clone_name = "x";
  Result<int64_t> jid = store_->InsertJob(job);
  ASSERT_TRUE(jid.ok());
  EXPECT_EQ(store_->Job(*jid)->host, "local");
  EXPECT_FALSE(store_->Job(*jid)->cleanup_pending);
}

TEST_P(StoreTest, ASourceThatGoesLeavesItsJobsWithoutIt) {
  const int64_t src = AddVm("src");
  JobRow job;
  job.source_vm = src;
  job.clone_name = "c";
  Result<int64_t> id = store_->InsertJob(job);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(store_->Job(*id)->clone_vm, 0);  // NULL reads as 0
  ASSERT_TRUE(store_->DeleteVm(src).ok());
  EXPECT_EQ(store_->Job(*id)->source_vm, 0);
}

TEST_P(StoreTest, ASnapshotALinkedCloneStandsOnCannotGo) {
  const int64_t src = AddVm("src");
  Result<int64_t> snap = store_->InsertSnapshot({0, src, "s1", "<domainsnapshot/>", "", Consistency::kOffline});
  ASSERT_TRUE(snap.ok());
  VmRow linked;
  linked.uuid = "u-linked";
  linked.name = "linked";
  linked.ns = "default";
  linked.backing_snapshot = *snap;
  ASSERT_TRUE(store_->InsertVm(linked).ok());
  EXPECT_FALSE(store_->DeleteSnapshot(*snap).ok());
  EXPECT_EQ(store_->VmsBackedBy(*snap).size(), 1u);
}

TEST_P(StoreTest, NamesAreUniquePerNamespace) {
  AddVm("one");
  VmRow again;
  again.uuid = "other-uuid";
  again.name = "one";
  again.ns = "default";
  EXPECT_FALSE(store_->InsertVm(again).ok());
  again.ns = "team-b";
  EXPECT_TRUE(store_->InsertVm(again).ok());
}

TEST_P(StoreTest, ListsAreInByteOrderOnBothEngines) {
  for (const char* n : {"b", "B", "a", "_x"}) AddVm(n);
  std::vector<std::string> names;
  for (const VmRow& v : store_->Vms()) names.push_back(v.name);
  EXPECT_EQ(names, (std::vector<std::string>{"B", "_x", "a", "b"}));
}

TEST_P(StoreTest, AFailedWriteLeavesNothing) {
  Status s = store_->Write([&]() -> Status {
    EXPECT_TRUE(store_->AddPool({"p", "/pool"}).ok());
    return Status::InvalidArgument("stop here");
  });
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(store_->Pools().empty());
  EXPECT_TRUE(store_->AddPool({"p", "/pool"}).ok());
  EXPECT_FALSE(store_->AddPool({"p", "/other"}).ok());  // the key holds
  EXPECT_EQ(store_->Pools().size(), 1u);
}

TEST_P(StoreTest, AnErrorQuotingBytesThatAreNotUtf8IsStored) {
  JobRow job;
  job.clone_name = "c";
  Result<int64_t> id = store_->InsertJob(job);
  ASSERT_TRUE(id.ok());
  job.id = *id;
  job.state = JobState::kFailed;
  job.error = "backing file 'a\xff\xc0\xed\xa0\x80" "b' not found: \xe2\x82\xac";
  ASSERT_TRUE(store_->UpdateJob(job).ok());  // not left "queued" for want of UTF-8
  std::optional<JobRow> got = store_->Job(*id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->state, JobState::kFailed);
  if (GetParam() == "postgresql") {
    EXPECT_EQ(got->error, "backing file 'a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b' not found: \xe2\x82\xac");
  } else {
    EXPECT_EQ(got->error, job.error);  // SQLite keeps the bytes
  }
}

TEST_P(StoreTest, TheDatabaseIsSound) { EXPECT_EQ(store_->IntegrityCheck(), "ok"); }

TEST(SqliteStore, ASecondServiceOnTheFileIsRefused) {
  char tmpl[] = "/tmp/clonekit-store-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string db = std::string(tmpl) + "/state.db";
  Result<std::unique_ptr<Store>> first = Store::Open(db);
  ASSERT_TRUE(first.ok());
  Result<std::unique_ptr<Store>> second = Store::Open(db);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().IsLocked()) << second.status().message();
  first.value().reset();
  std::filesystem::remove_all(tmpl);
}

TEST(PostgresStore, AUrlWithAPasswordIsRefusedWithoutQuotingIt) {
  Result<std::unique_ptr<Store>> s = Store::Open("postgresql://u:secret@127.0.0.1:1/db");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().find("secret"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("~/.pgpass"), std::string::npos) << s.status().message();
}

TEST(PostgresStore, AUrlLibpqCannotReadIsRefusedWithoutQuotingIt) {
  // libpq's own message would quote the bad part: the password here.
  Result<std::unique_ptr<Store>> s = Store::Open("postgresql://u:se%zzcret@127.0.0.1:1/db");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().find("cret"), std::string::npos) << s.status().message();
}

TEST(PostgresStore, AnUnreachableServerIsNamedWithoutSettings) {
  Result<std::unique_ptr<Store>> s = Store::Open("postgresql://u@127.0.0.1:1/db?sslmode=disable");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("postgresql://u@127.0.0.1:1/db"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("cannot connect"), std::string::npos) << s.status().message();
}

TEST(PostgresStore, ANulInTextIsRefusedNotCut) {
  const char* url = std::getenv("CLONEKIT_TEST_PG_URL");
  if (!url) GTEST_SKIP() << "CLONEKIT_TEST_PG_URL not set";
  Result<std::unique_ptr<Store>> s = Store::Open(url);
  ASSERT_TRUE(s.ok());
  Status added = (*s)->AddPool({std::string("p\0q", 3), "/pool-nul"});
  EXPECT_FALSE(added.ok());
  for (const Pool& p : (*s)->Pools()) EXPECT_NE(p.dir, "/pool-nul");
}

INSTANTIATE_TEST_SUITE_P(Engines, StoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace clonekit::manager
