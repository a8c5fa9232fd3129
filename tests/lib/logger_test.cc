#include "dtx/logger.h"

#include "dtx/spdlog_logger.h"

#include "temp_dir.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>

namespace dtx {
namespace {

TEST(LoggerTest, NullLoggerWantsNothing) {
  auto logger = NewNullLogger();
  EXPECT_FALSE(logger->ShouldLog(LogLevel::kError));
  int evaluated = 0;
  DTX_LOG(logger, LogLevel::kError, "x" << ++evaluated);
  EXPECT_EQ(evaluated, 0);  // the message is not even built
}

TEST(LoggerTest, SpdlogAdapterWritesThroughTheHostsLogger) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto host = std::make_shared<spdlog::logger>("host", sink);
  host->set_pattern("%l %v");
  host->set_level(spdlog::level::info);
  auto logger = NewSpdlogLogger(host);

  EXPECT_FALSE(logger->ShouldLog(LogLevel::kDebug));
  EXPECT_TRUE(logger->ShouldLog(LogLevel::kWarn));
  DTX_LOG(logger, LogLevel::kDebug, "hidden");
  DTX_LOG(logger, LogLevel::kWarn,
          "gid="
              << "g1"
              << " retry " << 3);
  host->flush();
  EXPECT_EQ(out.str(), "warning gid=g1 retry 3\n");
}

TEST(LoggerTest, SpdlogAdapterWritesOtherProgramsTextAsOneLine) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto host = std::make_shared<spdlog::logger>("host", sink);
  host->set_pattern("%v");
  auto logger = NewSpdlogLogger(host);
  // A branch's answer quoted in a message: a forged second line, a terminal
  // escape, NUL, bytes that are not UTF-8, and UTF-8 that is kept.
  logger->Log(LogLevel::kWarn, std::string("HTTP 500: x\n2026 [info] forged"
                                           "\x1b[31m\0\xff\xfe caf\xc3\xa9",
                                           44));
  host->flush();
  EXPECT_EQ(out.str(),
            "HTTP 500: x\\x0a2026 [info] forged\\x1b[31m\\x00\\xff\\xfe "
            "caf\xc3\xa9\n");
}

// Issue 19 item 7: a branch's error text in a log line.
TEST(LoggableTextTest, MasksPasswordsInUrlsAndConnectionStrings) {
  EXPECT_EQ(LoggableText("dial postgres://app:s3cr3t@db:5432/x failed"),
            "dial postgres://app:***@db:5432/x failed");
  EXPECT_EQ(LoggableText("http://u:p@ss@h/a and https://h/b?x=1"),
            "http://u:***@h/a and https://h/b?x=1");
  // No password (a user alone, a port): nothing to mask.
  EXPECT_EQ(LoggableText("grpc://user@h:80/s"), "grpc://user@h:80/s");
  EXPECT_EQ(LoggableText("http://h:8080/x"), "http://h:8080/x");
  EXPECT_EQ(LoggableText("host=db user=app password=hunter2 dbname=x"),
            "host=db user=app password=*** dbname=x");
  EXPECT_EQ(LoggableText("Server=s;PWD=x1;Uid=u"), "Server=s;PWD=***;Uid=u");
  // A word that merely ends in "pwd=" is not the key.
  EXPECT_EQ(LoggableText("oldpwd=a"), "oldpwd=a");
  EXPECT_EQ(MaskCredentials("mysql://root:pw@127.0.0.1/"),
            "mysql://root:***@127.0.0.1/");
}

TEST(LoggableTextTest, EscapesControlCharactersAndCutsLongText) {
  EXPECT_EQ(LoggableText("bad\n2026-01-01 [dtx] [info] forged\x1b[31m"),
            "bad\\x0a2026-01-01 [dtx] [info] forged\\x1b[31m");
  EXPECT_EQ(LoggableText(std::string("a\0b\xff\x7f", 5)), "a\\x00b\\xff\\x7f");
  EXPECT_EQ(LoggableText("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 stays
  const std::string big(2000, 'x');
  EXPECT_EQ(LoggableText(big), std::string(512, 'x') + "... (1488 bytes cut)");
  // Cut on a character boundary: an "é" that would straddle is left out.
  EXPECT_EQ(LoggableText("ab\xc3\xa9", 3), "ab... (2 bytes cut)");
  EXPECT_EQ(LoggableText(""), "");
}

TEST(LoggerTest, NewLoggerWritesOwnerOnlyFilesAndRotatesThem) {
  dtx::testing::TempDir dir;
  LogFile file;
  file.path = dir.File("dtx.log");
  file.rotate = true;
  file.max_bytes = 2048;
  file.max_files = 2;
  auto logger = NewLogger(LogLevel::kInfo, /*to_stderr=*/false, {file});
  ASSERT_TRUE(logger.ok()) << logger.status();
  for (int i = 0; i < 200; ++i) {
    DTX_LOG(*logger, LogLevel::kInfo, "line " << i << std::string(40, 'x'));
  }
  DTX_LOG(*logger, LogLevel::kDebug, "not written");
  logger->reset();  // flushes and closes
  struct stat st {};
  ASSERT_EQ(::stat(file.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.File("dtx.1.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.File("dtx.2.log").c_str(), &st), 0);
  EXPECT_NE(::stat(dir.File("dtx.3.log").c_str(), &st), 0);
  std::ifstream in(file.path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("[dtx] [info] line 199"), std::string::npos);
  EXPECT_EQ(text.str().find("not written"), std::string::npos);

  LogFile missing;
  missing.path = dir.File("no/such/dir/x.log");
  auto bad = NewLogger(LogLevel::kInfo, false, {missing});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(missing.path + ": cannot open"),
            std::string::npos)
      << bad.status();
  file.max_files = 0;
  EXPECT_EQ(NewLogger(LogLevel::kInfo, false, {file}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(LoggerTest, LevelsParse) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("INFO"), LogLevel::kInfo);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarn);
  EXPECT_EQ(*ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(*ParseLogLevel("off"), LogLevel::kOff);
  EXPECT_EQ(ParseLogLevel("loud").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ToString(LogLevel::kWarn), "warn");
}

TEST(LoggerTest, StderrLoggerHonoursItsLevel) {
  auto logger = NewStderrLogger(LogLevel::kWarn);
  EXPECT_FALSE(logger->ShouldLog(LogLevel::kInfo));
  EXPECT_TRUE(logger->ShouldLog(LogLevel::kError));
}

}  // namespace
}  // namespace dtx
