-- Wireshark/tshark dissector for the mwgc management protocol, versions 1 and 2
-- (docs/management-protocol.md). Written from the specification alone, so
-- the end-to-end test that decodes captures with it also checks that the
-- specification describes what the agent sends.
--
--   tshark -X lua_script:mwgc_mgmt.lua -r capture.pcap -Y mwgc_mgmt
--   wireshark: copy to ~/.local/lib/wireshark/plugins/
-- The UDP port is a preference (default 9793), as each cluster picks its own.

local p = Proto("mwgc_mgmt", "mwgc management protocol")

local types = { [1] = "DISCOVERY", [2] = "ANSWER" }
local auths = { [0] = "none", [1] = "HMAC-SHA256" }
local healths = { [1] = "available", [2] = "leaving" }

local f = {
  magic    = ProtoField.uint16("mwgc_mgmt.magic", "Magic", base.HEX),
  version  = ProtoField.uint8("mwgc_mgmt.version", "Version"),
  type     = ProtoField.uint8("mwgc_mgmt.type", "Type", base.DEC, types),
  auth     = ProtoField.uint8("mwgc_mgmt.auth", "Auth", base.DEC, auths),
  reserved = ProtoField.uint8("mwgc_mgmt.reserved", "Reserved"),
  length   = ProtoField.uint16("mwgc_mgmt.length", "Body length"),
  boot     = ProtoField.uint64("mwgc_mgmt.boot_id", "Boot ID", base.HEX),
  seq      = ProtoField.uint64("mwgc_mgmt.seq", "Sequence number"),
  time     = ProtoField.int64("mwgc_mgmt.time", "Timestamp (Unix ms)"),
  cluster  = ProtoField.string("mwgc_mgmt.cluster", "Cluster"),
  node     = ProtoField.string("mwgc_mgmt.node", "Node"),
  digest   = ProtoField.bytes("mwgc_mgmt.digest", "Plan digest (SHA-256)"),
  interval = ProtoField.uint32("mwgc_mgmt.interval", "Interval (ms)"),
  health   = ProtoField.uint8("mwgc_mgmt.health", "Health", base.DEC, healths),
  load     = ProtoField.uint16("mwgc_mgmt.load", "Load (per mille)"),
  count    = ProtoField.uint8("mwgc_mgmt.addr_count", "Address count"),
  addr     = ProtoField.string("mwgc_mgmt.addr", "Address"),
  mac      = ProtoField.bytes("mwgc_mgmt.mac", "MAC"),
  serving  = ProtoField.bool("mwgc_mgmt.serving", "Proxy port serving"),
  hwaddr   = ProtoField.ether("mwgc_mgmt.hwaddr", "Distribution MAC"),
}
p.fields = f
p.prefs.port = Pref.uint("UDP port", 9793, "UDP port of the management protocol")

local function name(buf, off, tree, field)
  local n = buf(off, 1):uint()
  tree:add(field, buf(off + 1, n))
  return off + 1 + n
end

function p.dissector(buf, pinfo, root)
  if buf:len() < 32 or buf(0, 2):uint() ~= 0x6d67 then return 0 end
  pinfo.cols.protocol = "MWGC-MGMT"
  local t = root:add(p, buf())
  t:add(f.magic, buf(0, 2))
  t:add(f.version, buf(2, 1))
  local typ = buf(3, 1):uint()
  t:add(f.type, buf(3, 1))
  local auth = buf(4, 1):uint()
  t:add(f.auth, buf(4, 1))
  t:add(f.reserved, buf(5, 1))
  local blen = buf(6, 2):uint()
  t:add(f.length, buf(6, 2))
  t:add(f.boot, buf(8, 8))
  t:add(f.seq, buf(16, 8))
  t:add(f.time, buf(24, 8))
  local off = 32
  off = name(buf, off, t, f.cluster)
  local node_off = off
  off = name(buf, off, t, f.node)
  t:add(f.digest, buf(off, 32)); off = off + 32
  if typ == 1 then
    t:add(f.interval, buf(off, 4)); off = off + 4
  elseif typ == 2 then
    t:add(f.health, buf(off, 1)); off = off + 2 -- health, reserved
    t:add(f.load, buf(off, 2)); off = off + 2
    local n = buf(off, 1):uint()
    t:add(f.count, buf(off, 1)); off = off + 1
    for _ = 1, n do
      local fam = buf(off, 1):uint()
      local alen = (fam == 4) and 4 or 16
      local a = (fam == 4) and tostring(buf(off + 1, 4):ipv4()) or tostring(buf(off + 1, 16):ipv6())
      t:add(f.addr, buf(off, 1 + alen + 1), a .. "/" .. buf(off + 1 + alen, 1):uint())
      off = off + 1 + alen + 1
    end
    if buf(2, 1):uint() >= 2 then -- version 2: the distribution report
      t:add(f.serving, buf(off, 1):uint() % 2 == 1)
      t:add(f.hwaddr, buf(off + 2, 6))
      off = off + 8
    end
  end
  if auth == 1 then t:add(f.mac, buf(32 + blen, 32)) end
  pinfo.cols.info = (types[typ] or "?") .. " from " .. buf(node_off + 1, buf(node_off, 1):uint()):string()
  return buf:len()
end

local udp = DissectorTable.get("udp.port")
local registered = nil
local function register()
  if registered then udp:remove(registered, p) end
  registered = p.prefs.port
  udp:add(registered, p)
end
p.prefs_changed = register
register()
