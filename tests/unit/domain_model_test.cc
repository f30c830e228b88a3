// The domain allow-list (issue #12, class 2): each definition that would
// reach the host through libvirt is refused with one line naming the
// element, and what libvirt gets is written from the model.
#include "domain_model.h"

#include <gtest/gtest.h>

#include "domain_xml.h"

namespace clonekit::manager {
namespace {

std::string Domain(const std::string& devices, const std::string& extra = "") {
  return "<domain type='kvm'><name>x</name><memory unit='MiB'>64</memory>" + extra + "<devices>" + devices +
         "</devices></domain>";
}

const char* kDisk = "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                    "<source file='/pool/x.qcow2'/><target dev='vda' bus='virtio'/></disk>";

struct Refused {
  const char* what;
  std::string xml;
  const char* error;  // the one line, exactly
};

TEST(DomainModel, RefusesWhatReachesTheHost) {
  const std::vector<Refused> cases = {
      {"emulator", Domain("<emulator>/tmp/evil</emulator>"), "devices/emulator: not allowed"},
      {"qemu:commandline",
       "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>x</name>"
       "<qemu:commandline><qemu:arg value='-x'/></qemu:commandline></domain>",
       "qemu:commandline: elements in another XML namespace are not allowed"},
      {"seclabel", Domain("", "<seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>"),
       "seclabel: not allowed"},
      {"disk without type",
       Domain("<disk device='disk'><source file='/pool/x'/><target dev='vda'/></disk>"),
       "devices/disk: type='file' is required"},
      {"block disk", Domain("<disk type='block' device='disk'><source dev='/dev/sda'/><target dev='vda'/></disk>"),
       "devices/disk/@type: value 'block' is not allowed"},
      {"network disk",
       Domain("<disk type='network' device='disk'><source protocol='nbd' name='x'/><target dev='vda'/></disk>"),
       "devices/disk/@type: value 'network' is not allowed"},
      {"filesystem", Domain("<filesystem type='mount'><source dir='/'/><target dir='root'/></filesystem>"),
       "devices/filesystem: not allowed"},
      {"hostdev", Domain("<hostdev mode='subsystem' type='pci'/>"), "devices/hostdev: not allowed"},
      {"file serial", Domain("<serial type='file'><source path='/etc/cron.d/x'/></serial>"),
       "devices/serial/@type: value 'file' is not allowed"},
      {"unix channel path", Domain("<channel type='unix'><source mode='bind' path='/etc/x'/></channel>"),
       "devices/channel/source/@path: not allowed"},
      {"two names", "<domain type='kvm'><name>a</name><name>b</name></domain>", "name: appears twice"},
      {"target dev with a slash", Domain("<disk type='file'><source file='/pool/x'/><target dev='../../x'/></disk>"),
       "devices/disk/target/@dev: value '../../x' is not allowed"},
      {"graphics on all addresses", Domain("<graphics type='vnc' listen='0.0.0.0'/>"),
       "devices/graphics/@listen: value '0.0.0.0' is not allowed"},
      {"rng from a host file", Domain("<rng model='virtio'><backend model='random'>/dev/sda</backend></rng>"),
       "devices/rng/backend: value '/dev/sda' is not allowed"},
      {"tpm passthrough", Domain("<tpm model='tpm-tis'><backend type='passthrough'/></tpm>"),
       "devices/tpm/backend/@type: value 'passthrough' is not allowed"},
      {"watchdog dump", Domain("<watchdog model='i6300esb' action='dump'/>"),
       "devices/watchdog/@action: value 'dump' is not allowed"},
      {"interface type direct", Domain("<interface type='direct'><source dev='eth0'/></interface>"),
       "devices/interface/@type: value 'direct' is not allowed"},
      {"a host tap name", Domain("<interface type='network'><target dev='eth0'/></interface>"),
       "devices/interface/target/@dev: value 'eth0' is not allowed"},
      {"nvram template", Domain("", "<os><type>hvm</type><nvram template='/etc/shadow'>/pool/v.fd</nvram></os>"),
       "os/nvram/@template: not allowed"},
      {"metadata", "<domain type='kvm'><name>x</name><metadata><a/></metadata></domain>", "metadata: not allowed"},
      {"entity", "<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><domain><name>&e;</name></domain>",
       "domain XML: a DOCTYPE is not allowed"},
      {"xen domain", "<domain type='xen'><name>x</name></domain>", "domain/@type: value 'xen' is not allowed"},
      {"duplicate target", Domain(std::string(kDisk) + kDisk), "devices/disk: target vda appears twice"},
  };
  for (const Refused& c : cases) {
    Result<Element> r = ParseDomainModel(c.xml);
    EXPECT_FALSE(r.ok()) << c.what;
    if (!r.ok()) {
      EXPECT_EQ(r.status().message(), c.error) << c.what;
    }
  }
}

TEST(DomainModel, AcceptsWhatACloneNeedsAndWritesItFromTheModel) {
  const std::string xml = Domain(
      std::string(kDisk) +
          "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sda' bus='sata'/><readonly/></disk>"
          "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/>"
          "<model type='virtio'/></interface>"
          "<graphics type='vnc' port='-1' autoport='yes'><listen type='address' address='127.0.0.1'/></graphics>"
          "<video><model type='virtio' heads='1'/></video><input type='tablet' bus='usb'/>"
          "<serial type='pty'><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>"
          "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
          "<controller type='usb' index='0' model='qemu-xhci'/><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
          "<memballoon model='virtio'/><watchdog model='i6300esb' action='reset'/>"
          "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>",
      "<vcpu placement='static'>2</vcpu><os><type arch='x86_64' machine='q35'>hvm</type>"
      "<loader readonly='yes' type='pflash'>/pool/OVMF_CODE.fd</loader><nvram>/pool/x_VARS.fd</nvram><boot dev='hd'/>"
      "<kernel>/pool/vmlinuz</kernel><initrd>/pool/initrd.img</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
      "<features><acpi/><apic/></features><cpu mode='host-passthrough'/><clock offset='utc'/>"
      "<!-- a comment, dropped --><description>a &lt;b&gt; &amp; c</description>");
  Result<Element> model = ParseDomainModel(xml);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const std::string written = WriteDomainModel(*model);
  EXPECT_EQ(written.find("comment"), std::string::npos);
  EXPECT_NE(written.find("a &lt;b&gt; &amp; c"), std::string::npos) << written;
  // What was written parses to the same tree (a fixed point).
  Result<Element> again = ParseDomainModel(written);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(WriteDomainModel(*again), written);
  Result<DomainInfo> info = ParseDomain(xml);
  ASSERT_TRUE(info.ok());
  // Every host path the manager must confine.
  std::vector<std::string> paths;
  for (const auto& [path, what] : info->host_paths) paths.push_back(what + "=" + path);
  EXPECT_EQ(paths, (std::vector<std::string>{"os/nvram=/pool/x_VARS.fd", "os/loader=/pool/OVMF_CODE.fd",
                                             "os/kernel=/pool/vmlinuz", "os/initrd=/pool/initrd.img",
                                             "disk vda=/pool/x.qcow2"}));
}

TEST(DomainModel, BackingStoreIsReadAndNotPassedOn) {
  Result<Element> model = ParseDomainModel(Domain(
      "<disk type='file' device='disk'><source file='/pool/x.qcow2'/>"
      "<backingStore type='file'><source file='/etc/shadow'/></backingStore><target dev='vda'/></disk>"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(WriteDomainModel(*model).find("shadow"), std::string::npos);
}

}  // namespace
}  // namespace clonekit::manager
