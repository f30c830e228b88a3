// Hosts: which libvirt URIs and SSH addresses are taken, the remote shell's
// quoting (checked by a real /bin/sh), and Capture's bounds.
#include <gtest/gtest.h>

#include <chrono>

#include "host_uri.h"
#include "process.h"
#include "remote_host.h"

namespace clonekit::manager {
namespace {

TEST(HostUri, TakesSshAndTlsToSystem) {
  for (const char* uri : {"qemu+ssh://h2/system", "qemu+ssh://root@h2:2222/system", "qemu+tls://h2.example.org/system",
                          "qemu+libssh://admin@10.0.0.2/system", "qemu+ssh://[fd00::2]/system", "test:///default"}) {
    EXPECT_TRUE(CheckHostUri(uri).ok()) << uri << ": " << CheckHostUri(uri).message();
  }
}

TEST(HostUri, RefusesWhatChoosesProgramsFilesOrPlaintext) {
  for (const char* uri : {"qemu+ssh://h2/system?command=/bin/sh", "qemu+ssh://h2/system?", "qemu+ssh://h2/system#",
                          "qemu+ext:///system", "qemu+tcp://h2/system", "qemu:///system", "qemu+unix:///system",
                          "QEMU+SSH://h2/system", "qemu+ssh://h2/session", "qemu+ssh:///system",
                          "qemu+ssh://-oProxyCommand=x/system", "qemu+ssh://h2%60id%60/system",
                          "qemu+ssh://a%40b@h2/system", "qemu+ssh://u:pw@h2/system", "test:///etc/shadow",
                          "qemu+ssh://Root@h2/system", ""}) {
    EXPECT_FALSE(CheckHostUri(uri).ok()) << uri;
  }
}

TEST(SshTarget, ParsesWhatAnAdminWrites) {
  Result<SshTarget> t = ParseSshTarget("root@h2:2222");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->user, "root");
  EXPECT_EQ(t->host, "h2");
  EXPECT_EQ(t->port, 2222);
  EXPECT_EQ(ParseSshTarget("[fd00::2]:22")->host, "[fd00::2]");
  EXPECT_EQ(SshTargetOfUri("qemu+ssh://admin@10.0.0.2:2200/system")->ToString(), "admin@10.0.0.2:2200");
  for (const char* bad : {"-oProxyCommand=x", "root@-h", "h2:0", "h2:99999", "h2:", "a b", "r%r@h", "h2;id", ""}) {
    EXPECT_FALSE(ParseSshTarget(bad).ok()) << bad;
  }
  EXPECT_FALSE(SshTargetOfUri("qemu+tls://h2/system").ok());
}

TEST(ShellQuote, TheRemoteShellReadsBackEveryArgumentWhole) {
  for (const std::string arg : {"plain", "it's", "a b", "$(touch /tmp/x)", "`id`", "'; rm -rf / #", "\\'", "line\nbreak",
                                "*", "~root", "", "--", "-n"}) {
    Result<std::string> out = Capture({"sh", "-c", "printf '%s' " + ShellQuote(arg)}, 5);
    ASSERT_TRUE(out.ok()) << arg;
    EXPECT_EQ(*out, arg);
  }
}

TEST(Capture, GivesUpAtItsDeadline) {
  const auto start = std::chrono::steady_clock::now();
  Result<std::string> out = Capture({"sleep", "30"}, 1);
  EXPECT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("no answer within 1 s"), std::string::npos) << out.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(Capture, BoundsWhatItKeeps) {
  Result<std::string> out = Capture({"head", "-c", "3000000", "/dev/zero"}, 10, 1 << 20);
  EXPECT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("more than expected"), std::string::npos) << out.status().message();
}

TEST(Capture, SaysTheLastLineOfAFailure) {
  Result<std::string> out = Capture({"sh", "-c", "echo banner >&2; echo; printf 'the \\033[31mreason\\n' >&2; exit 3"}, 5);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("the ?[31mreason"), std::string::npos) << out.status().message();
}

TEST(Capture, SaysWhatCli11RefusedNotItsHelpHint) {
  Result<std::string> out =
      Capture({"sh", "-c", "echo 'The following argument was not expected: --x' >&2; "
                           "echo 'Run with --help for more information.' >&2; exit 109"}, 5);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("not expected: --x"), std::string::npos) << out.status().message();
}

TEST(Stream, GivesItsInputAndHandsOverItsOutput) {
  std::string got;
  Status s = Stream({"sh", "-c", "read -r x; echo \"got $x\""}, "the key\n", [&](std::string_view t) { got.append(t); },
                    nullptr);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(got, "got the key\n");
}

// A remote script learns that we are gone when its stdin ends: it stays
// open while the child runs, and closes once its output has ended.
TEST(Stream, KeepsStdinOpenWhileTheChildRuns) {
  std::string got;
  // (bash's read -t: more than 128 when it timed out, 1 at the end of input)
  Status s = Stream({"bash", "-c", "echo first; read -t 0.5 -r x; [ $? -gt 128 ] && echo open || echo ended"}, "",
                    [&](std::string_view t) { got.append(t); }, nullptr);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(got, "first\nopen\n");
}

TEST(Stream, CancelEndsTheChildAndWhatItStarted) {
  std::atomic<bool> cancel{false};
  const auto start = std::chrono::steady_clock::now();
  Status s = Stream({"sh", "-c", "echo started; sleep 30 & wait"}, "", [&](std::string_view) { cancel = true; }, &cancel);
  EXPECT_TRUE(s.IsCancelled()) << s.message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(Stream, SaysTheLastLineOfAFailure) {
  Status s = Stream({"sh", "-c", "echo 'no such chain' >&2; exit 2"}, "", [](std::string_view) {}, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no such chain"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace clonekit::manager
