#!/usr/bin/perl
# The serial console of the VM, between qemu and the terminal (used by run.sh):
#   console.pl LOG T0  < qemu's output
# Copies qemu's output to stdout as it comes (partial lines too: a shell prompt shows at
# once), and appends it to LOG line by line, with \r and ANSI colour sequences removed.
# When the first line containing "all units up" arrives, writes LOG.all-units-up with the
# seconds since T0 (the epoch time at which qemu was started) and that line; the same for
# "not all units came up" in LOG.not-all-units-up.
use strict;
use warnings;
use Time::HiRes qw(time);

my ($log, $t0) = @ARGV;
die "usage: console.pl LOG T0\n" unless defined $t0;
open(my $out, '>>', $log) or die "console.pl: $log: $!\n";
my $buf  = '';
my %seen;
binmode STDIN;
binmode STDOUT;

sub line {
    my ($line, $now) = @_;
    $line =~ s/\e\[[0-9;?]*[A-Za-z]//g;
    $line =~ s/\r//g;
    print $out $line, "\n";
    $out->flush;
    # The end of the boot: every unit up, or kennel's word that not all of them came up.
    for my $what (['all-units-up', qr/all units up/], ['not-all-units-up', qr/not all units came up/]) {
        my ($name, $re) = @$what;
        next if $seen{$name} || $line !~ $re;
        $seen{$name} = 1;
        if (open(my $t, '>', "$log.$name")) {
            printf $t "%.3f %s\n", $now - $t0, $line;
            close $t;
        }
    }
}

while (1) {
    my $n = sysread(STDIN, my $chunk, 65536);
    if (!defined $n) {
        next if $!{EINTR};
        last;
    }
    last if $n == 0;
    my $now = time;
    my $off = 0;
    while ($off < length $chunk) {
        my $w = syswrite(STDOUT, $chunk, length($chunk) - $off, $off);
        last unless defined $w;    # stdout gone: keep logging
        $off += $w;
    }
    $buf .= $chunk;
    while ($buf =~ s/^([^\n]*)\n//) {
        line($1, $now);
    }
}
line($buf, time) if length $buf;
