//! Single-flight, the bound on concurrent Vault calls, and callers that stop waiting.

use super::*;

/// `n` threads ask `broker` for `request` at the same moment; their answers.
fn all_at_once(
    n: usize,
    broker: &CredentialBroker,
    request: &[(String, String)],
) -> Vec<Result<IssuedCredentials, BrokerError>> {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    broker.credentials(request)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

#[test]
fn sixty_four_parallel_requests_make_one_sts_call() {
    let w = world();
    let broker = w.broker();
    let request = w.token_request("ecr-push", "world-parallel-64", &[]);
    let keys: Vec<String> = all_at_once(64, &broker, &request)
        .into_iter()
        .map(|issued| map(&issued.unwrap())["access_key_id"].clone())
        .collect();
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "everyone gets the same credentials"
    );
    assert_eq!(w.sts_calls("ecr-push"), 1, "{}", w.counters());
    let stats = broker.stats();
    assert_eq!(stats.vault_calls, 1);
    assert_eq!(stats.cache_misses, 1);
    assert_eq!(stats.cache_hits, 63);
}

#[test]
fn waiters_share_one_failure_and_the_next_request_tries_again() {
    let w = world();
    w.fault(
        &json!({"path": "^aws/sts/ecr-push", "status": 400, "delay_ms": 300, "count": 1,
                   "body": {"errors": ["one shared failure"]}}),
    );
    let broker = w.broker();
    let request = w.token_request("ecr-push", "world-shared-failure", &[]);
    let errors: Vec<BrokerError> = all_at_once(16, &broker, &request)
        .into_iter()
        .map(Result::unwrap_err)
        .collect();
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
    assert!(errors[0].to_string().contains("one shared failure"));
    assert_eq!(w.sts_calls("ecr-push"), 1);
    broker.credentials(&request).unwrap();
    assert_eq!(w.sts_calls("ecr-push"), 2);
}

#[test]
fn concurrent_vault_calls_are_bounded() {
    let w = world();
    w.fault(&json!({"path": "^aws/sts/ecr-push", "mode": "delay", "delay_ms": 300}));
    let mut options = w.options(&[]);
    options.max_concurrent_vault_calls = 2;
    let broker = Arc::new(CredentialBroker::new(options).unwrap());
    let started = Instant::now();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let broker = broker.clone();
            let request = w.token_request("ecr-push", &format!("world-bounded-{i}"), &[]);
            std::thread::spawn(move || broker.credentials(&request).map(|_| ()))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    // Six distinct requests, two at a time, 300 ms each: at least three rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(w.sts_calls("ecr-push"), 6);
}

// ---- waiting in slices (crate::waiting): an aborted Jenkins step stops waiting, not the fetch --

#[test]
fn a_caller_that_stops_waiting_leaves_the_fetch_to_the_others_and_a_full_cache_entry() {
    let w = world();
    w.fault(&json!({"path": "aws/sts/ecr-push", "mode": "delay", "delay_ms": 2000, "count": 1}));
    let broker = Arc::new(w.broker());
    let request = w.token_request("ecr-push", "jenkins-slices-1", &[]);

    let started = Instant::now();
    let first = broker
        .credentials_within(&request, Duration::from_millis(200))
        .unwrap();
    assert!(first.is_none(), "Vault is slow: not yet");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(broker.pending_fetches(), 1);

    // A parallel branch that waits the whole time shares the same fetch.
    let other = {
        let (broker, request) = (broker.clone(), request.clone());
        std::thread::spawn(move || broker.credentials(&request).unwrap())
    };
    // The first caller is gone (its build was aborted); the fetch goes on without it.
    let shared = other.join().unwrap();
    assert_eq!(w.sts_calls("ecr-push"), 1, "one Vault call for both");
    assert!(no_fetch_left(&broker), "nothing left under way");

    // The whole entry is in the cache: the next ask is a hit with the same keys.
    let again = broker
        .credentials_within(&request, Duration::from_millis(200))
        .unwrap()
        .expect("cached");
    assert_eq!(again.cache.as_str(), "hit");
    assert_eq!(
        again.credentials.access_key_id,
        shared.credentials.access_key_id
    );
    assert_eq!(w.sts_calls("ecr-push"), 1);
}

#[test]
fn a_fetch_that_fails_after_its_caller_stopped_waiting_leaves_no_entry() {
    let w = world();
    w.fault(
        &json!({"path": "aws/sts/ecr-push", "status": 400, "delay_ms": 1000, "count": 1,
                   "body": {"errors": ["invalid request"]}}),
    );
    let broker = w.broker();
    let request = w.token_request("ecr-push", "jenkins-slices-2", &[]);
    assert!(broker
        .credentials_within(&request, Duration::from_millis(100))
        .unwrap()
        .is_none());
    // Wait as the step would, slice after slice: the failure reaches the caller that asks again.
    let mut answer = None;
    for _ in 0..40 {
        match broker.credentials_within(&request, Duration::from_millis(100)) {
            Ok(None) => continue,
            other => {
                answer = Some(other);
                break;
            }
        }
    }
    let answer = answer.expect("an answer within 4 s");
    assert!(answer.is_err(), "{answer:?}");
    assert!(no_fetch_left(&broker));
    // Nothing half-filled was kept: the next ask is a new fetch, which succeeds.
    let issued = broker.credentials(&request).unwrap();
    assert_eq!(issued.cache.as_str(), "miss");
    assert_eq!(w.sts_calls("ecr-push"), 2);
}

/// The detached fetch forgets its entry right after it answers: give it a moment to.
fn no_fetch_left(broker: &CredentialBroker) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    while broker.pending_fetches() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    broker.pending_fetches() == 0
}
