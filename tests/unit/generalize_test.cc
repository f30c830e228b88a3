// Generalize: the item spelling shared by the API, the CLI and the store;
// the host items in a clone's definition; a TPM state's copy.
#include "generalize.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "domain_xml.h"
#include "guest_identity.h"
#include "guest_text.h"
#include "tpm_state.h"

namespace clonekit::manager {
namespace {

std::string Spell(const std::string& spec) {
  Result<GeneralizeItems> items = ParseGeneralize(spec);
  return items.ok() ? items->ToString() : "error: " + items.status().message();
}

TEST(Generalize, BaseIsTheHostItemsACloneAlwaysGot) {
  EXPECT_EQ(GeneralizeItems::Base().ToString(), "mac-addresses,smbios-serial,genid");
  EXPECT_FALSE(GeneralizeItems::Base().AnyGuest());
}

TEST(Generalize, SpellingReadsLeftToRightFromTheBase) {
  EXPECT_EQ(Spell("default"), "machine-id,ssh-host-keys,hostname,cloud-init,network-bindings,mac-addresses,smbios-serial,genid");
  EXPECT_EQ(Spell("none"), "");
  EXPECT_EQ(Spell("default,-hostname,tpm"),
            "machine-id,ssh-host-keys,cloud-init,network-bindings,mac-addresses,smbios-serial,genid,tpm");
  EXPECT_EQ(Spell("machine-id"), "machine-id,mac-addresses,smbios-serial,genid");
  EXPECT_EQ(Spell("-mac-addresses"), "smbios-serial,genid");
  EXPECT_EQ(Spell("none,hostname"), "hostname");
}

TEST(Generalize, UnknownOrEmptyItemsAreErrorsNamingThem) {
  EXPECT_EQ(Spell("default,sysprep"), "error: generalize: unknown item 'sysprep' (known: default, none, machine-id, "
                                      "ssh-host-keys, hostname, cloud-init, network-bindings, mac-addresses, "
                                      "smbios-serial, genid, tpm)");
  EXPECT_EQ(Spell(""), "error: generalize: an empty item in ''");
  EXPECT_EQ(Spell("default,,hostname"), "error: generalize: an empty item in 'default,,hostname'");
  EXPECT_NE(Spell(std::string(600, 'a')).find("longer than 512"), std::string::npos);
}

TEST(Generalize, StoreSpellingRoundTrips) {
  Result<GeneralizeItems> items = ParseGeneralize("default,tpm,-genid");
  ASSERT_TRUE(items.ok());
  EXPECT_EQ(GeneralizeFromStore(items->ToString()), *items);
  EXPECT_EQ(GeneralizeFromStore("hostname,bogus").ToString(), "hostname");
}

TEST(Generalize, HostnameFromACloneName) {
  EXPECT_EQ(HostnameFor("Web_2"), "web-2");
  EXPECT_EQ(HostnameFor(std::string(70, 'a')).size(), 63u);
  EXPECT_EQ(HostnameFor("db.prod"), "db");  // a host name, not a domain
  EXPECT_EQ(HostnameFor("web-"), "web");
}

const char* kDomain = R"(<domain type='kvm'>
  <name>web</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <genid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</genid>
  <sysinfo type='smbios'><system><entry name='serial'>SRC-SERIAL</entry><entry name='uuid'>11111111-2222-3333-4444-555555555555</entry></system></sysinfo>
  <os><type>hvm</type><smbios mode='sysinfo'/></os>
  <devices>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
  </devices>
</domain>)";

TEST(Generalize, DefinitionNamesSerialGenidAndTpm) {
  Result<DomainInfo> info = ParseDomain(kDomain);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->smbios_serial, "SRC-SERIAL");
  EXPECT_TRUE(info->has_genid);
  EXPECT_EQ(info->genid, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  EXPECT_TRUE(info->emulated_tpm);
}

TEST(Generalize, CloneGetsNewSerialAndGenidWhenAsked) {
  CloneIdentity id;
  id.name = "web2";
  id.uuid = "99999999-2222-3333-4444-555555555555";
  id.new_mac = [] { return std::string("52:54:00:00:00:99"); };
  id.serial = id.uuid;
  id.genid = "12345678-1234-1234-1234-123456789abc";
  Result<std::string> xml = MakeCloneXml(kDomain, id);
  ASSERT_TRUE(xml.ok()) << xml.status().message();
  Result<DomainInfo> info = ParseDomain(*xml);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->smbios_serial, id.uuid);
  EXPECT_EQ(info->genid, id.genid);
  EXPECT_EQ(info->macs, std::vector<std::string>{"52:54:00:00:00:99"});
  EXPECT_TRUE(info->emulated_tpm);  // the device stays; its state is the job's
}

TEST(Generalize, CloneKeepsSerialGenidAndMacsWhenNotAsked) {
  CloneIdentity id;
  id.name = "web2";
  id.uuid = "99999999-2222-3333-4444-555555555555";
  Result<std::string> xml = MakeCloneXml(kDomain, id);
  ASSERT_TRUE(xml.ok()) << xml.status().message();
  Result<DomainInfo> info = ParseDomain(*xml);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->smbios_serial, "SRC-SERIAL");
  EXPECT_EQ(info->genid, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  EXPECT_EQ(info->macs, std::vector<std::string>{"52:54:00:00:00:01"});
}

class TpmStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/clonekit-tpm-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/src/tpm2");
    std::ofstream(dir_ + "/src/tpm2/tpm2-00.permall") << "sealed keys";
    chmod((dir_ + "/src/tpm2").c_str(), 0711);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TpmStateTest, CopiesFilesAndModes) {
  Result<bool> copied = CopyTpmState(dir_, "src", "clone");
  ASSERT_TRUE(copied.ok()) << copied.status().message();
  EXPECT_TRUE(*copied);
  std::ifstream in(dir_ + "/clone/tpm2/tpm2-00.permall");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "sealed keys");
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/clone/tpm2").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  RemoveTpmState(dir_, "clone");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/clone"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/src/tpm2/tpm2-00.permall"));  // never the source's
}

TEST_F(TpmStateTest, NoStateYetIsNotAnError) {
  Result<bool> copied = CopyTpmState(dir_, "never-ran", "clone");
  ASSERT_TRUE(copied.ok());
  EXPECT_FALSE(*copied);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/clone"));
}

TEST_F(TpmStateTest, ALinkInTheStateIsRefusedAndNothingIsLeft) {
  ASSERT_EQ(symlink("/etc/shadow", (dir_ + "/src/tpm2/stolen").c_str()), 0);
  Result<bool> copied = CopyTpmState(dir_, "src", "clone");
  ASSERT_FALSE(copied.ok());
  EXPECT_NE(copied.status().message().find("stolen: is neither a file nor a directory"), std::string::npos)
      << copied.status().message();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/clone"));
}

TEST_F(TpmStateTest, AnExistingTargetIsNeverMergedInto) {
  std::filesystem::create_directories(dir_ + "/clone");
  std::ofstream(dir_ + "/clone/theirs") << "x";
  Result<bool> copied = CopyTpmState(dir_, "src", "clone");
  ASSERT_FALSE(copied.ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/clone/theirs"));
}


TEST(GuestText, SafeTextKeepsPrintableUtf8Only) {
  EXPECT_EQ(SafeText("café/état"), "café/état");
  EXPECT_EQ(SafeText(std::string("a\xff\x1b[31mb\n", 9)), "a??[31mb?");  // no escape reaches a terminal
  EXPECT_EQ(SafeText(std::string("\xe2\x82", 2)), "??");                  // a cut sequence
  EXPECT_EQ(SafeText(std::string(300, 'x')), std::string(256, 'x') + "...");
  EXPECT_EQ(SafeText(std::string(256, 'x')), std::string(256, 'x'));  // nothing cut, no "..."
  EXPECT_EQ(SafeText("a\xc2\x9b" "31mb"), "a?31mb");          // C1 CSI: terminals act on it
  EXPECT_EQ(SafeText("\xe2\x80\xae" "evil"), "?evil");       // a bidi override
  EXPECT_EQ(SafeText("\xc0\xaf" "x"), "??x");                 // an overlong '/'
  EXPECT_EQ(SafeText("\xed\xa0\x80"), "???");                // a surrogate
  EXPECT_EQ(SafeText("\xf4\x90\x80\x80"), "????");          // past U+10FFFF
}

TEST(GuestText, RenameHostRenamesTheHostAfterTheAddressOnly) {
  std::string hosts = "127.0.0.1\tlocalhost\n127.0.1.1\tweb.example.org web # web stays\n# web\n10.0.0.5 webby\n";
  EXPECT_EQ(RenameHost(&hosts, "web", "web-2"), 1);
  EXPECT_EQ(hosts, "127.0.0.1\tlocalhost\n127.0.1.1\tweb-2.example.org web-2 # web stays\n# web\n10.0.0.5 webby\n");
  std::string none = "127.0.0.1 localhost\n";
  EXPECT_EQ(RenameHost(&none, "web", "web-2"), 0);
  EXPECT_EQ(none, "127.0.0.1 localhost\n");
}

TEST(GuestText, RewriteMacsMatchesWholeTokensInTheFilesCase) {
  const std::vector<std::pair<std::string, std::string>> macs = {{"52:54:00:ab:cd:ef", "52:54:00:11:22:3a"}};
  std::string nm = "mac-address=52:54:00:AB:CD:EF\ncloned=152:54:00:ab:cd:ef\nx=52:54:00:ab:cd:ef:01\n";
  EXPECT_EQ(RewriteMacs(&nm, macs), std::vector<std::string>{"52:54:00:ab:cd:ef -> 52:54:00:11:22:3A"});
  EXPECT_EQ(nm, "mac-address=52:54:00:11:22:3A\ncloned=152:54:00:ab:cd:ef\nx=52:54:00:ab:cd:ef:01\n");
  std::string same = "ATTR{address}==\"52:54:00:ab:cd:ef\"";
  EXPECT_TRUE(RewriteMacs(&same, {{"52:54:00:ab:cd:ef", "52:54:00:ab:cd:ef"}}).empty());  // MACs kept
}

TEST(GuestText, InstanceIdIsSetInYamlAndJsonIsLeft) {
  std::string yaml = "instance-id: iid-src\nlocal-hostname: web\n";
  EXPECT_TRUE(SetInstanceId(&yaml, "u-1"));
  EXPECT_EQ(yaml, "instance-id: u-1\nlocal-hostname: web\n");
  std::string bare = "local-hostname: web\n";
  EXPECT_TRUE(SetInstanceId(&bare, "u-1"));
  EXPECT_EQ(bare, "instance-id: u-1\nlocal-hostname: web\n");
  std::string empty_id = "instance-id:\n";
  EXPECT_TRUE(SetInstanceId(&empty_id, "u-1"));
  EXPECT_EQ(empty_id, "instance-id: u-1\n");  // not a second key
  std::string spaced = "instance-id : iid-src\n";
  EXPECT_FALSE(SetInstanceId(&spaced, "u-1"));  // not guessed at: a second key would lose to the old one
  EXPECT_EQ(spaced, "instance-id : iid-src\n");
  std::string json = " {\"instance-id\": \"iid-src\"}";
  EXPECT_FALSE(SetInstanceId(&json, "u-1"));
  EXPECT_EQ(json, " {\"instance-id\": \"iid-src\"}");
}

TEST_F(TpmStateTest, AHardLinkInTheStateIsRefused) {
  std::ofstream(dir_ + "/secret") << "root's";
  ASSERT_EQ(link((dir_ + "/secret").c_str(), (dir_ + "/src/tpm2/tpm2-00.volatilestate").c_str()), 0);
  Result<bool> copied = CopyTpmState(dir_, "src", "clone");
  ASSERT_FALSE(copied.ok());
  EXPECT_NE(copied.status().message().find("a hard link"), std::string::npos) << copied.status().message();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/clone"));
}

TEST_F(TpmStateTest, SetuidBitsAreNotCopied) {
  chmod((dir_ + "/src/tpm2/tpm2-00.permall").c_str(), 04755);
  ASSERT_TRUE(CopyTpmState(dir_, "src", "clone").ok());
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/clone/tpm2/tpm2-00.permall").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

}  // namespace
}  // namespace clonekit::manager
