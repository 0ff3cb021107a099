/*
 * pcap-floor: the floor every capture reader is measured against. Reads capture files with
 * libpcap and nothing else: pcap_next_ex in a loop, counting packets and bytes.
 *
 *   pcap-floor FILE...
 */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv) {
    unsigned long long packets = 0, bytes = 0;
    for (int i = 1; i < argc; i++) {
        char error[PCAP_ERRBUF_SIZE];
        pcap_t *handle = pcap_open_offline(argv[i], error);
        if (!handle) { fprintf(stderr, "%s: %s\n", argv[i], error); return 66; }
        struct pcap_pkthdr *header;
        const u_char *data;
        while (pcap_next_ex(handle, &header, &data) == 1) {
            packets++;
            bytes += header->caplen;
        }
        pcap_close(handle);
    }
    printf("%llu packets, %llu bytes\n", packets, bytes);
    return 0;
}
