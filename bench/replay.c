/*
 * replay: writes recorded pcap files to standard output again and again, each round with
 * fresh IPv4 addresses and ports and later timestamps, so every round's connections are new
 * connections. Feeds the soak benchmark (bench/soak.sh) through `tlsreuse -`.
 *
 *   replay ROUNDS FILE.pcap...      (classic pcap, microsecond, little-endian, one link type)
 *
 * Round r maps a.b.c.d to 10.(r>>8).(r&255).d and XORs both ports with (r & 0x3ff) << 4, so
 * both directions of a connection stay consistent. Checksums are not recomputed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct packet {
    uint64_t offset; /* microseconds from the start of a round */
    uint32_t caplen, len;
    unsigned char *data;
};

static struct packet *packets;
static size_t count, capacity;
static unsigned char header[24];
/* Where the next file starts within a round: files follow each other one second apart. */
static uint64_t roundCursor;

static void load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(66); }
    unsigned char h[24];
    if (fread(h, 1, 24, f) != 24 || h[0] != 0xd4 || h[1] != 0xc3) {
        fprintf(stderr, "%s: not a little-endian microsecond pcap\n", path);
        exit(66);
    }
    if (count == 0) memcpy(header, h, 24);
    uint32_t r[4];
    uint64_t first = 0, last = 0;
    int seen = 0;
    while (fread(r, 4, 4, f) == 4) {
        if (count == capacity) {
            capacity = capacity ? capacity * 2 : 1024;
            packets = realloc(packets, capacity * sizeof *packets);
        }
        uint64_t t = (uint64_t)r[0] * 1000000 + r[1];
        if (!seen) { first = t; seen = 1; }
        if (t < first) t = first;
        struct packet *p = &packets[count++];
        p->offset = roundCursor + (t - first);
        p->caplen = r[2]; p->len = r[3];
        p->data = malloc(p->caplen);
        if (fread(p->data, 1, p->caplen, f) != p->caplen) { count--; break; }
        if (t > last) last = t;
    }
    roundCursor += (last - first) + 1000000;
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: replay ROUNDS FILE.pcap...\n"); return 64; }
    long rounds = atol(argv[1]);
    for (int i = 2; i < argc; i++) load(argv[i]);
    uint64_t base = 1800000000ULL * 1000000; /* 2027-01-15: rounds start here */
    uint64_t span = roundCursor;
    unsigned char *buffer = malloc(1 << 18);
    fwrite(header, 1, 24, stdout);
    for (long r = 0; r < rounds; r++) {
        uint16_t portMask = (uint16_t)((r & 0x3ff) << 4);
        for (size_t i = 0; i < count; i++) {
            struct packet *p = &packets[i];
            memcpy(buffer, p->data, p->caplen);
            /* Ethernet carrying IPv4 only (the recorded loopback captures). */
            if (p->caplen >= 34 && buffer[12] == 0x08 && buffer[13] == 0x00 && (buffer[14] >> 4) == 4) {
                unsigned ihl = (buffer[14] & 0x0f) * 4;
                for (int a = 26; a <= 30; a += 4) {
                    buffer[a] = 10; buffer[a + 1] = (unsigned char)(r >> 8); buffer[a + 2] = (unsigned char)r;
                }
                if (buffer[23] == 6 && p->caplen >= 14 + ihl + 4) {
                    unsigned char *tcp = buffer + 14 + ihl;
                    uint16_t sp = (uint16_t)(tcp[0] << 8 | tcp[1]) ^ portMask, dp = (uint16_t)(tcp[2] << 8 | tcp[3]) ^ portMask;
                    tcp[0] = sp >> 8; tcp[1] = sp & 0xff; tcp[2] = dp >> 8; tcp[3] = dp & 0xff;
                }
            }
            uint64_t t = base + (uint64_t)r * span + p->offset;
            uint32_t record[4] = {(uint32_t)(t / 1000000), (uint32_t)(t % 1000000), p->caplen, p->len};
            fwrite(record, 4, 4, stdout);
            fwrite(buffer, 1, p->caplen, stdout);
        }
    }
    return 0;
}
