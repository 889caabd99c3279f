/** The two APT::Periodic settings that make unattended-upgrades actually run. */
export function renderAutoUpgrades(): string {
  return ['APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";', ""].join(
    "\n",
  );
}

/**
 * Security origins for unattended-upgrades, in a file of our own so that the package's
 * 50unattended-upgrades stays untouched and keeps upgrading cleanly.
 */
export function renderSecurityOrigins(): string {
  return [
    "// Written by clawguard harden: install security updates unattended.",
    "Unattended-Upgrade::Origins-Pattern {",
    '  "origin=Debian,codename=${distro_codename},label=Debian-Security";',
    '  "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";',
    "};",
    "",
  ].join("\n");
}
