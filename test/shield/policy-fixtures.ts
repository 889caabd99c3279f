import { createHash } from "node:crypto";

/** The example from the shield documentation, with a known token for scout. */
export const SCOUT_TOKEN = "scout-token-7f3a";
export const SCOUT_HASH = createHash("sha256").update(SCOUT_TOKEN).digest("hex");

export const EXAMPLE = `listen: 127.0.0.1:3128
log: { path: ./shield.db }
mode: enforce
tiers:
  crew:      { allow: [api.openai.com, "*.anthropic.com:443"] }
  commodore: { allow: ["*.openai.com", "*.anthropic.com", api.github.com] }
fleets:
  acme: { isolation: isolated }
agents:
  - { id: scout, fleet: acme, tier: crew, token_sha256: "${SCOUT_HASH}" }
  - { id: admiral, fleet: acme, tier: commodore, sources: [127.0.0.2/32] }
deny: [pastebin.com, "*.ngrok.io"]
`;
