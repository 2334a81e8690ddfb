//! Intended send times, fixed before the first message is sent: they depend on the rate, the
//! duration, the arrival process and the seed, and on nothing the router does. That is what
//! makes the driver open-loop: a stalled router cannot slow the schedule down, so every
//! message it delays shows up in the latency measured from its intended time.
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// Exponential gaps (a Poisson process): the bursts real traffic has.
    Poisson,
    /// Evenly spaced.
    Uniform,
}

impl std::str::FromStr for Arrivals {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "poisson" => Ok(Arrivals::Poisson),
            "uniform" => Ok(Arrivals::Uniform),
            _ => Err(format!("arrivals must be poisson or uniform, not {s:?}")),
        }
    }
}

/// Offsets in nanoseconds from the start of the run, ascending, all below `duration_ns`.
pub fn offsets(rate: f64, duration_ns: u64, arrivals: Arrivals, seed: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity((rate * duration_ns as f64 / 1e9) as usize + 16);
    if rate <= 0.0 {
        return out;
    }
    let gap = 1e9 / rate;
    let mut rng = Rng::derive(seed, 0x5CED);
    let mut t = 0.0f64;
    loop {
        let at = t as u64;
        if at >= duration_ns {
            return out;
        }
        out.push(at);
        t += match arrivals {
            Arrivals::Uniform => gap,
            // 1 - u is in (0, 1], so the logarithm is finite.
            Arrivals::Poisson => -(1.0 - rng.unit()).ln() * gap,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_spacing_and_count() {
        let o = offsets(1000.0, 1_000_000_000, Arrivals::Uniform, 1);
        assert_eq!(o.len(), 1000);
        assert_eq!(o[1] - o[0], 1_000_000);
        assert_eq!(*o.last().unwrap(), 999_000_000);
    }

    #[test]
    fn poisson_is_seeded_ascending_and_near_the_rate() {
        let a = offsets(5000.0, 2_000_000_000, Arrivals::Poisson, 9);
        let b = offsets(5000.0, 2_000_000_000, Arrivals::Poisson, 9);
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        // 10,000 expected; a Poisson count has a standard deviation of 100.
        assert!((9_500..10_500).contains(&a.len()), "{}", a.len());
        assert_ne!(a, offsets(5000.0, 2_000_000_000, Arrivals::Poisson, 10));
    }
}
