#!/usr/bin/perl
# The serial console of a disk boot, between qemu and the terminal (used by run-disk.sh):
#   disk-console.pl LOG T0 [--login IN HTTP_DONE] [--emergency IN]  < qemu's output
# Copies qemu's output to stdout as it comes and appends it to LOG line by line, with \r
# and ANSI colour sequences removed, like console.pl. It also answers the guest, writing
# to IN (the fifo that is qemu's stdin):
#   --login IN HTTP_DONE  once the guest's checks print `CHECKS WAITING login` and the file
#                         HTTP_DONE exists (run-disk.sh's host-side request to the daemon is
#                         over; at most 60 s more): logs in on the console as root, password
#                         `kennel`, and types a command that prints `LOGIN-42 /dev/ttyS0`
#                         and writes `LOGIN root` to /run/kennelvm-login, which the checks
#                         wait for; then `exit`.
#   --emergency IN        once `EMERGENCY` shows (kennel's emergency mode), types
#                         `kennel poweroff` into the emergency shell (again every 20 s).
# The prompts are matched on the text as it comes, partial lines included (`login: `,
# `Password: ` and the shell's `# ` end no line). Each step is noted in LOG as a line
# `disk-console: ...` (and on stderr). Writes LOG.all-units-up (seconds since T0 and the line) on the first
# `all units up`, like console.pl.
use strict;
use warnings;
use Time::HiRes qw(time);
use IO::Select;

my ($log, $t0, @opt) = @ARGV;
die "usage: disk-console.pl LOG T0 [--login IN HTTP_DONE] [--emergency IN]\n" unless defined $t0;
my ($login_in, $http_done, $emerg_in);
while (@opt) {
    my $o = shift @opt;
    if ($o eq '--login') { ($login_in, $http_done) = splice(@opt, 0, 2); }
    elsif ($o eq '--emergency') { $emerg_in = shift @opt; }
    else { die "disk-console.pl: unknown option $o\n"; }
}
open(my $out, '>>', $log) or die "disk-console.pl: $log: $!\n";
binmode STDIN;
binmode STDOUT;
my $buf = '';     # the current partial line
my $text = '';    # what came since the dialogue's last step (prompts are matched here)
my %seen;

sub note {
    my ($msg) = @_;
    my $l = sprintf "disk-console: %.1fs %s\n", time - $t0, $msg;
    print $out $l;
    $out->flush;
    print STDERR $l;
}

sub line {
    my ($line, $now) = @_;
    $line =~ s/\e\[[0-9;?]*[A-Za-z]//g;
    $line =~ s/\r//g;
    print $out $line, "\n";
    $out->flush;
    if (!$seen{up} && $line =~ /all units up/) {
        $seen{up} = 1;
        if (open(my $t, '>', "$log.all-units-up")) {
            printf $t "%.3f %s\n", $now - $t0, $line;
            close $t;
        }
    }
}

sub type {
    my ($fifo, $what, $shown) = @_;
    if (open(my $w, '>', $fifo)) {
        syswrite($w, "$what\n");
        close $w;
        note("typed " . ($shown // $what));
    } else {
        note("cannot write to $fifo: $!");
    }
}

# The login dialogue: a list of [wait for regex, then type text]; a step's regex is
# matched on what came after the previous step.
my @login = (
    [qr/CHECKS WAITING login/, undef],
    ['http', undef],
    # The getty may have printed its prompt long before: an empty line makes it ask again
    # (the step's fourth field: type that after 2 s, then every 10 s, until the prompt shows).
    [qr/login: /, 'root', undef, ''],
    [qr/Password: /, 'kennel', 'the password'],
    [qr/# $/m, 'echo "LOGIN $(id -un)" >/run/kennelvm-login; echo LOGIN-$((6*7)) $(tty); exit'],
);
my $step = 0;
my $step_since = time;
my $nudge_at = 0;
my $emerg_next = 0;
my $sel = IO::Select->new(\*STDIN);

sub advance {
    my $now = time;
    if ($login_in && $step < @login) {
        my ($want, $send, $shown, $nudge) = @{$login[$step]};
        my $hit = 0;
        if (defined $nudge && $now >= $nudge_at) {
            if ($nudge_at) {
                type($login_in, $nudge, 'an empty line (for the prompt again)');
                $nudge_at = $now + 10;
            } else {
                $nudge_at = $now + 2;    # the first: 2 s into the step, then every 10 s
            }
        }
        if ($want eq 'http') {
            if (-e $http_done) { $hit = 1; }
            elsif ($now - $step_since > 60) { note("no host-side request result after 60s; logging in anyway"); $hit = 1; }
        } elsif ($text =~ $want) {
            $hit = 1;
        }
        if ($hit) {
            note("login step " . ($step + 1) . " of " . scalar(@login) . ": seen " . ($want eq 'http' ? 'the host-side request done' : "'$want'"));
            # A prompt is printed before the program reads: let it settle.
            select(undef, undef, undef, 0.5) if defined $send;
            type($login_in, $send, $shown) if defined $send;
            $text = '';
            $step++;
            $step_since = $now;
        }
    }
    if ($emerg_in && $seen{emergency} && $now >= $emerg_next) {
        if ($emerg_next == 0) {
            $emerg_next = $now + 3;    # let the emergency shell start
            return;
        }
        type($emerg_in, 'kennel poweroff');
        $emerg_next = $now + 20;
    }
}

while (1) {
    if (!$sel->can_read(0.2)) {
        advance();
        next;
    }
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
    (my $clean = $chunk) =~ s/\r//g;
    $text .= $clean;
    $text = substr($text, -65536) if length $text > 65536;
    $buf .= $chunk;
    while ($buf =~ s/^([^\n]*)\n//) {
        my $l = $1;
        $seen{emergency} = 1 if $l =~ /EMERGENCY/;
        line($l, $now);
    }
    advance();
}
line($buf, time) if length $buf;
