// MapDtmTrans (tools/dtxctl/dtm_import.cc): dtm's rows as dtx's model, and
// the rows dtx cannot take over, without a database.

#include "dtm_import.h"

#include "status_matchers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

namespace dtx::dtxctl {
namespace {

using ::dtx::testing::StatusIs;
using nlohmann::json;
using ::testing::HasSubstr;

TimePoint Ms(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

DtmTransRow Saga() {
  DtmTransRow row;
  row.gid = "g1";
  row.trans_type = "saga";
  row.status = "submitted";
  row.protocol = "http";
  row.options = "{\"concurrent\":false}";
  row.create_time_ms = 1'700'000'000'000;
  row.next_cron_time_ms = 1'700'000'010'000;
  row.next_cron_interval = 10;
  DtmBranchRow c;
  c.branch_id = "01";
  c.op = "compensate";
  c.status = "prepared";
  c.url = "http://busi/revert";
  DtmBranchRow a = c;
  a.op = "action";
  a.url = "http://busi/out";
  a.bin_data = std::string("{\"amount\":30}");
  row.branches = {c, a};
  return row;
}

MapOptions At(int64_t now_ms) {
  MapOptions o;
  o.now = Ms(now_ms);
  return o;
}

TEST(MapDtmTransTest, KeepsTimesScheduleAndPayloads) {
  auto t = MapDtmTrans(Saga(), At(1'700'000'005'000));
  ASSERT_OK(t);
  EXPECT_EQ(t->trans.trans_type, TransType::kSaga);
  EXPECT_EQ(t->trans.status, TransStatus::kSubmitted);
  EXPECT_EQ(t->trans.protocol, "http");
  EXPECT_EQ(t->trans.options, "{}");  // concurrent:false is the default
  EXPECT_EQ(t->trans.create_time, Ms(1'700'000'000'000));
  EXPECT_EQ(t->trans.update_time, Ms(1'700'000'000'000));
  EXPECT_EQ(t->trans.next_cron_time, Ms(1'700'000'010'000));
  EXPECT_EQ(t->trans.next_cron_interval, std::chrono::seconds(10));
  ASSERT_EQ(t->branches.size(), 2u);
  EXPECT_EQ(t->branches[0].bin_data, "");  // NULL bin_data
  EXPECT_EQ(t->branches[1].bin_data, "{\"amount\":30}");
  EXPECT_EQ(t->branches[1].gid, "g1");
  EXPECT_EQ(t->branches[1].create_time, Ms(1'700'000'000'000));
}

TEST(MapDtmTransTest, NullTimesBecomeTheImportTimeAndDueNowOverrides) {
  DtmTransRow row = Saga();
  row.create_time_ms.reset();
  row.next_cron_time_ms.reset();
  row.next_cron_interval.reset();
  auto t = MapDtmTrans(row, At(42'000));
  ASSERT_OK(t);
  EXPECT_EQ(t->trans.create_time, Ms(42'000));
  EXPECT_EQ(t->trans.next_cron_time, Ms(42'000));
  EXPECT_EQ(t->trans.next_cron_interval, std::chrono::seconds(0));

  MapOptions due = At(1'700'000'005'000);
  due.due_at = Ms(7'000);
  auto d = MapDtmTrans(Saga(), due);
  ASSERT_OK(d);
  EXPECT_EQ(d->trans.next_cron_time, Ms(7'000));
}

TEST(MapDtmTransTest, DtmsUncappedBackOffIsCappedAtMaxDelay) {
  DtmTransRow row = Saga();
  row.next_cron_interval = 10 * 86400;  // dtm's back-off after many failures
  row.next_cron_time_ms = 1'700'000'000'000 + 10 * 86400'000LL;
  MapOptions o = At(1'700'000'000'000);
  o.max_delay = std::chrono::seconds(3600);
  auto t = MapDtmTrans(row, o);
  ASSERT_OK(t);
  EXPECT_EQ(t->trans.next_cron_interval, std::chrono::seconds(3600));
  EXPECT_EQ(t->trans.next_cron_time, Ms(1'700'000'000'000 + 3600'000));

  o.max_delay = std::chrono::seconds(0);  // dtm's schedule as is
  auto kept = MapDtmTrans(row, o);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->trans.next_cron_interval, std::chrono::seconds(864000));
  EXPECT_EQ(kept->trans.next_cron_time,
            Ms(1'700'000'000'000 + 10 * 86400'000LL));
}

TEST(MapDtmTransTest, OptionsAndLegacyHeadersBecomeDtxOptions) {
  DtmTransRow row = Saga();
  row.options =
      "{\"wait_result\":true,\"timeout_to_fail\":60,\"request_timeout\":5,"
      "\"retry_interval\":20,\"retry_limit\":3,\"retry_count\":2,"
      "\"concurrent\":true,\"branch_headers\":{\"a\":\"1\",\"same\":\"new\","
      "\"k-bin\":\"\\u0001x\"}}";
  row.ext_data = "{\"headers\":{\"same\":\"old\",\"legacy\":\"2\"}}";
  auto t = MapDtmTrans(row, At(1));
  ASSERT_OK(t);
  EXPECT_EQ(json::parse(t->trans.options),
            json::parse("{\"wait_result\":true,\"timeout_to_fail\":60,"
                        "\"request_timeout\":5,\"retry_interval\":20,"
                        "\"retry_limit\":3,\"concurrent\":true,"
                        "\"branch_headers\":{\"a\":\"1\",\"same\":\"new\","
                        "\"legacy\":\"2\"},"
                        "\"branch_headers_bin\":{\"k-bin\":\"AXg=\"}}"));
  EXPECT_EQ(t->trans.retry_count, 2);
  EXPECT_EQ(t->trans.ext_data, "");
}

TEST(MapDtmTransTest, EmptyProtocolIsGrpcRouting) {
  DtmTransRow row = Saga();
  row.protocol = "";
  auto t = MapDtmTrans(row, At(1));
  ASSERT_OK(t);
  EXPECT_EQ(t->trans.protocol, "grpc");
}

TEST(MapDtmTransTest, RefusesWhatDtxDoesNotRun) {
  DtmTransRow xa = Saga();
  xa.trans_type = "xa";
  EXPECT_THAT(MapDtmTrans(xa, At(1)), StatusIs(StatusCode::kUnimplemented));
  DtmTransRow wf = Saga();
  wf.trans_type = "workflow";
  EXPECT_THAT(MapDtmTrans(wf, At(1)), StatusIs(StatusCode::kUnimplemented));
  DtmTransRow rpc = Saga();
  rpc.protocol = "json-rpc";
  EXPECT_THAT(MapDtmTrans(rpc, At(1)), StatusIs(StatusCode::kUnimplemented));
  DtmTransRow unknown = Saga();
  unknown.trans_type = "2pc";
  EXPECT_THAT(MapDtmTrans(unknown, At(1)),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST(MapDtmTransTest, RefusesMalformedRows) {
  DtmTransRow status = Saga();
  status.status = "done";
  EXPECT_THAT(MapDtmTrans(status, At(1)),
              StatusIs(StatusCode::kInvalidArgument));
  DtmTransRow op = Saga();
  op.branches[1].op = "launch";
  EXPECT_THAT(MapDtmTrans(op, At(1)), StatusIs(StatusCode::kInvalidArgument));
  DtmTransRow options = Saga();
  options.options = "{\"retry_interval\":\"ten\"}";
  EXPECT_THAT(MapDtmTrans(options, At(1)),
              StatusIs(StatusCode::kInvalidArgument));
  DtmTransRow custom = Saga();
  custom.custom_data = "[1]";
  EXPECT_THAT(MapDtmTrans(custom, At(1)),
              StatusIs(StatusCode::kInvalidArgument));
  DtmTransRow pairs = Saga();
  std::swap(pairs.branches[0], pairs.branches[1]);
  auto p = MapDtmTrans(pairs, At(1));
  EXPECT_THAT(p, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(p.status().message(), HasSubstr("compensate/action pairs"));
  DtmTransRow tcc = Saga();
  tcc.trans_type = "tcc";  // with saga's ops
  EXPECT_THAT(MapDtmTrans(tcc, At(1)), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dtx::dtxctl
