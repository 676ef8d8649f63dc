package distrib

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Slot is the slot the kernel picks for a client: nft's `jhash ip saddr
// mod slots seed seed` computes the Linux jhash of the address's four
// network-order bytes and scales it to the table size (reciprocal_scale,
// not a remainder). Tests check it against the kernel; /status uses it to
// say where a client goes.
func Slot(client netip.Addr, seed uint32, slots int) int {
	b := client.Unmap().AsSlice()
	return int(uint64(jhash(b, seed)) * uint64(slots) >> 32)
}

// Seed derives the hash seed of a cluster from its name, so every director
// of the cluster hashes alike and two clusters hash differently.
func Seed(cluster string) uint32 {
	sum := sha256.Sum256([]byte("mwgc/distrib/seed\x00" + cluster))
	// 0 would ask the kernel for a random seed of its own.
	return max(binary.BigEndian.Uint32(sum[:4]), 1)
}

// jhash is Bob Jenkins' lookup3 hash as include/linux/jhash.h has it
// (jhash(), words read little-endian as on the kernels mwgc runs on).
func jhash(k []byte, initval uint32) uint32 {
	const initVal = 0xdeadbeef
	n := uint32(len(k))
	a := initVal + n + initval
	b, c := a, a
	for len(k) > 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = jmix(a, b, c)
		k = k[12:]
	}
	if len(k) == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], k)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	_, _, c = jfinal(a, b, c)
	return c
}

func rol(x uint32, k int) uint32 { return bits.RotateLeft32(x, k) }

func jmix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= rol(c, 4)
	c += b
	b -= a
	b ^= rol(a, 6)
	a += c
	c -= b
	c ^= rol(b, 8)
	b += a
	a -= c
	a ^= rol(c, 16)
	c += b
	b -= a
	b ^= rol(a, 19)
	a += c
	c -= b
	c ^= rol(b, 4)
	b += a
	return a, b, c
}

func jfinal(a, b, c uint32) (uint32, uint32, uint32) {
	c ^= b
	c -= rol(b, 14)
	a ^= c
	a -= rol(c, 11)
	b ^= a
	b -= rol(a, 25)
	c ^= b
	c -= rol(b, 16)
	a ^= c
	a -= rol(c, 4)
	b ^= a
	b -= rol(a, 14)
	c ^= b
	c -= rol(b, 24)
	return a, b, c
}
