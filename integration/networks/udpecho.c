/* A tiny UDP echo for the published-port tests (integration/networks.rs), built with
 * gcc -static so it runs in a busybox container and in the test's own namespaces.
 *
 *   udpecho serve PORT NAME   answers each datagram with "NAME:PORT<-SOURCE_ADDRESS"
 *   udpecho ask ADDR PORT     sends "hi" (up to 3 times, 1 s apart) and prints the answer;
 *                             exit 1 when none came
 *
 * IPv4 only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int serve(int port, const char *name) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) {
        perror("socket");
        return 2;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bind");
        return 2;
    }
    for (;;) {
        char buf[512];
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        if (recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len) < 0)
            continue;
        char src[INET_ADDRSTRLEN], out[600];
        inet_ntop(AF_INET, &from.sin_addr, src, sizeof src);
        int n = snprintf(out, sizeof out, "%s:%d<-%s", name, port, src);
        sendto(s, out, (size_t)n, 0, (struct sockaddr *)&from, len);
    }
}

static int ask(const char *addr, int port) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0) {
        perror("socket");
        return 2;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, addr, &to.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", addr);
        return 2;
    }
    struct timeval tv = {.tv_sec = 1};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 3; i++) {
        if (sendto(s, "hi", 2, 0, (struct sockaddr *)&to, sizeof to) < 0) {
            perror("sendto");
            return 2;
        }
        char buf[600];
        ssize_t n = recv(s, buf, sizeof buf - 1, 0);
        if (n >= 0) {
            buf[n] = 0;
            printf("%s\n", buf);
            return 0;
        }
    }
    fprintf(stderr, "no answer from %s:%d\n", addr, port);
    return 1;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "serve") == 0)
        return serve(atoi(argv[2]), argv[3]);
    if (argc == 4 && strcmp(argv[1], "ask") == 0)
        return ask(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: udpecho serve PORT NAME | udpecho ask ADDR PORT\n");
    return 2;
}
