// DomainXml: parsing file disks and rewriting a definition for a clone, as
// virt-clone does (checked against libvirt's schema in tests/e2e/manager.sh).
#include "domain_xml.h"

#include <gtest/gtest.h>

namespace clonekit::manager {
namespace {

const char* kDomain = R"(<domain type='kvm'>
  <name>web</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <sysinfo type='smbios'><system><entry name='uuid'>11111111-2222-3333-4444-555555555555</entry></system></sysinfo>
  <os><type>hvm</type><nvram>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/p/web.qcow2'/>
      <backingStore type='file'><source file='/p/base.qcow2'/></backingStore><target dev='vda'/></disk>
    <disk type='file' device='cdrom'><source file='/p/install.iso'/><target dev='sda'/></disk>
    <disk type='file' device='disk'><source file='/p/data.raw'/><target dev='vdb'/></disk>
    <interface type='network'><mac address='52:54:00:00:00:01'/><target dev='vnet3'/></interface>
    <graphics type='spice' port='5900' autoport='no'/>
    <channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
</domain>)";

TEST(DomainXml, ParsesFileDisksOnly) {
  Result<DomainInfo> info = ParseDomain(kDomain);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->name, "web");
  ASSERT_EQ(info->disks.size(), 2u);  // the cdrom is not a disk to clone
  EXPECT_EQ(info->disks[0].file, "/p/web.qcow2");
  EXPECT_EQ(info->disks[0].format, "qcow2");
  EXPECT_EQ(info->disks[1].format, "raw");  // libvirt's default
  EXPECT_EQ(info->macs, std::vector<std::string>{"52:54:00:00:00:01"});
}

TEST(DomainXml, CloneGetsANewIdentityAndNoHostBits) {
  CloneIdentity id;
  id.name = "web-clone";
  id.uuid = "99999999-8888-7777-6666-555555555555";
  id.description = "a <clone> & more";
  id.new_mac = [] { return std::string("52:54:00:12:34:56"); };
  id.disks["vda"] = {"vda", "/q/web-clone-vda.raw", "raw"};
  id.nvram = "/var/lib/libvirt/qemu/nvram/web-clone_VARS.fd";
  Result<std::string> xml = MakeCloneXml(kDomain, id);
  ASSERT_TRUE(xml.ok()) << xml.status().message();
  Result<DomainInfo> info = ParseDomain(*xml);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->name, "web-clone");
  EXPECT_EQ(info->uuid, id.uuid);
  EXPECT_EQ(info->description, id.description);  // escaped on the way in, read back intact
  EXPECT_EQ(info->macs, std::vector<std::string>{"52:54:00:12:34:56"});
  EXPECT_EQ(info->disks[0].file, "/q/web-clone-vda.raw");
  EXPECT_EQ(info->disks[0].format, "raw");
  EXPECT_EQ(info->disks[1].file, "/p/data.raw");  // not named: unchanged
  EXPECT_EQ(info->nvram, id.nvram);
  EXPECT_EQ(xml->find("11111111-2222"), std::string::npos) << "old UUID left (sysinfo?)";
  EXPECT_EQ(xml->find("backingStore"), std::string::npos);
  EXPECT_EQ(xml->find("vnet3"), std::string::npos);
  EXPECT_EQ(xml->find("port=\"5900\""), std::string::npos);
  EXPECT_NE(xml->find("autoport=\"yes\""), std::string::npos);
  EXPECT_EQ(xml->find("/run/web.agent"), std::string::npos);
}

TEST(DomainXml, RefusesWhatItCannotClone) {
  EXPECT_FALSE(ParseDomain("<domain><name>x</name").ok());
  EXPECT_FALSE(ParseDomain("<notadomain/>").ok());
  EXPECT_FALSE(ParseDomain("<domain/>").ok());  // no name
  Result<DomainInfo> vmdk = ParseDomain(
      "<domain><name>x</name><devices><disk type='file' device='disk'><driver type='vmdk'/>"
      "<source file='/a'/><target dev='vda'/></disk></devices></domain>");
  ASSERT_FALSE(vmdk.ok());
  EXPECT_NE(vmdk.status().message().find("vmdk"), std::string::npos);
  // No external entities: a definition cannot make the manager read files.
  Result<DomainInfo> xxe = ParseDomain(
      "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><domain><name>&e;</name></domain>");
  if (xxe.ok()) {
    EXPECT_EQ(xxe->name.find("root:"), std::string::npos);
  }
}

TEST(DomainXml, SummaryReadsCpusMemoryAndInterfaces) {
  Result<DomainInfo> info = ParseDomain(
      "<domain><name>s</name><vcpu placement='static'>4</vcpu><memory unit='GiB'>2</memory><devices>"
      "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/>"
      "<model type='virtio'/></interface>"
      "<interface type='bridge'><source bridge='br0'/></interface></devices></domain>");
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->vcpus, 4u);
  EXPECT_EQ(info->memory_kib, 2u << 20);
  ASSERT_EQ(info->interfaces.size(), 2u);
  EXPECT_EQ(info->interfaces[0].mac, "52:54:00:00:00:01");
  EXPECT_EQ(info->interfaces[0].type, "network");
  EXPECT_EQ(info->interfaces[0].source, "default");
  EXPECT_EQ(info->interfaces[0].model, "virtio");
  EXPECT_EQ(info->interfaces[1].source, "br0");
  EXPECT_EQ(info->interfaces[1].mac, "");
  // No unit means KiB; an unknown unit or garbage is refused, not guessed.
  EXPECT_EQ(ParseDomain("<domain><name>s</name><memory>1048576</memory></domain>")->memory_kib, 1048576u);
  EXPECT_EQ(ParseDomain("<domain><name>s</name><memory unit='parsec'>1</memory></domain>").status().message(),
            "memory/@unit: value 'parsec' is not allowed");
  EXPECT_EQ(ParseDomain("<domain><name>s</name><vcpu>4x</vcpu></domain>").status().message(),
            "vcpu: value '4x' is not allowed");
}

TEST(DomainXml, RandomMacsAreLocallyAdministeredUnicast) {
  for (int i = 0; i < 100; i++) {
    std::string mac = RandomMac();
    ASSERT_EQ(mac.size(), 17u);
    EXPECT_EQ(mac.substr(0, 9), "52:54:00:");  // 0x52: locally administered, unicast
  }
  EXPECT_NE(RandomUuid(), RandomUuid());
}

}  // namespace
}  // namespace clonekit::manager
