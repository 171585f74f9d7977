/* The compute scheduler's wait/notify protocol (Sources/XPUServer/ComputeScheduler.swift, `run`),
 * for spin (scripts/check-models.sh runs both checks below; CI runs it): N tenants, each taking turns on one device forever. A tenant marks itself waiting,
 * then, under the lock, takes the turn if the device is free and `next` names it, and otherwise
 * sleeps on the condition until a broadcast. The end of a turn charges the tenant, frees the device
 * and broadcasts. Timed waits are left out: the states that matter here have no deadline (no cap,
 * no hold), and the 5 ms re-check only bounds how long a lost wake-up lasts.
 *
 * A lost wake-up is a state where every tenant sleeps and none runs: spin reports it as an
 * invalid end state (no process can move).
 *
 *   spin -a compute-turns.pml && cc -O2 -o pan pan.c && ./pan -m1000000
 *       ties to the lower index, as the scheduler breaks them: errors: 0
 *   spin -a -DDICTIONARY_ORDER compute-turns.pml && cc -O2 -o pan pan.c && ./pan -m1000000
 *       ties to whichever tenant a fresh dictionary lists first: an invalid end state, every
 *       tenant asleep with the device free (`./pan -i` then `spin -t -g` shows the shortest:
 *       two tenants tied, each sleeping because it found the turn the other's)
 */
#define N 3
#define MAXPASS 3

bool locked = false;
bool busy = false;
bool waiting[N];
bool sleeping[N];
byte pass[N];
byte next;            /* nextTenant's answer, N for none */

inline lock() { atomic { !locked -> locked = true } }
inline unlock() { locked = false }

inline broadcast() {
    byte k = 0;
    do
    :: k < N -> sleeping[k] = false; k++
    :: else -> break
    od
}

/* nextTenant: the waiting tenant with the least pass. Ties go to the lowest index, or, with
 * DICTIONARY_ORDER, to any of the tied tenants, chosen afresh at each evaluation (Swift gives
 * each new dictionary, such as the one `filter` returns, a hash seed of its own). */
inline nextTenant() {
    byte j = 0, least = 255;
    next = N;
    do
    :: j < N ->
        if
        :: waiting[j] && pass[j] < least -> least = pass[j]; next = j
        :: else -> skip
        fi;
        j++
    :: else -> break
    od;
#ifdef DICTIONARY_ORDER
    j = 0;
    do
    :: j < N ->
        if
        :: waiting[j] && pass[j] == least && j != next -> next = j
        :: true -> skip
        fi;
        j++
    :: else -> break
    od;
#endif
    j = 0;
    least = 0
}

/* Passes are kept small: all are lowered together once every tenant has run. */
inline charge(i) {
    if
    :: pass[i] < MAXPASS -> pass[i]++
    :: else -> skip
    fi;
    if
    :: pass[0] > 0 && pass[1] > 0 && pass[2] > 0 -> pass[0]--; pass[1]--; pass[2]--
    :: else -> skip
    fi
}

proctype Tenant(byte i) {
    do
    :: lock();
       waiting[i] = true;
       do
       :: atomic {
              nextTenant();
              if
              :: !busy && next == i -> break
              :: else -> sleeping[i] = true; unlock()   /* pthread_cond_wait releases the lock */
              fi
          };
          (!sleeping[i]);                               /* until a broadcast */
          lock()
       od;
       busy = true;
       waiting[i] = false;
       unlock();
       /* the kernel runs */
       lock();
       charge(i);
       busy = false;
       broadcast();
       unlock()
    od
}

init {
    atomic {
        run Tenant(0);
        run Tenant(1);
        run Tenant(2)
    }
}
