//! Training statistics per tick (training_stats.Collector): every reported value of a name since
//! the last tick summarised as `{num, mean, std}`, one JSON line per tick in `stats.jsonl` like
//! the official file, which the training panel plots.

use std::collections::BTreeMap;

/// Sums of reported values per name.
#[derive(Default)]
pub struct Collector {
    moments: BTreeMap<String, (f64, f64, f64)>,
}

impl Collector {
    /// Reports values under `name` (non-finite ones are ignored, as the official collector does).
    pub fn add(&mut self, name: &str, values: &[f32]) {
        let m = self.moments.entry(name.to_string()).or_insert((0.0, 0.0, 0.0));
        for &v in values.iter().filter(|v| v.is_finite()) {
            let v = v as f64;
            m.0 += 1.0;
            m.1 += v;
            m.2 += v * v;
        }
    }

    /// The mean of `name` so far (for the progress bar).
    pub fn mean(&self, name: &str) -> Option<f64> {
        self.moments.get(name).filter(|m| m.0 > 0.0).map(|m| m.1 / m.0)
    }

    /// The tick's record (`{"Loss/G/loss": {"num", "mean", "std"}, ..., "timestamp"}`), and a
    /// fresh start.
    pub fn take_json(&mut self) -> String {
        let mut obj = serde_json::Map::new();
        for (name, (n, s, s2)) in std::mem::take(&mut self.moments) {
            if n == 0.0 {
                continue;
            }
            let mean = s / n;
            let std = (s2 / n - mean * mean).max(0.0).sqrt();
            obj.insert(name, serde_json::json!({"num": n, "mean": mean, "std": std}));
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        obj.insert("timestamp".into(), serde_json::json!(now));
        serde_json::Value::Object(obj).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_like_training_stats() {
        let mut c = Collector::default();
        c.add("Loss/G/loss", &[1.0, 3.0]);
        c.add("Loss/G/loss", &[f32::NAN]);
        assert_eq!(c.mean("Loss/G/loss"), Some(2.0));
        let v: serde_json::Value = serde_json::from_str(&c.take_json()).unwrap();
        assert_eq!(v["Loss/G/loss"]["num"], 2.0);
        assert_eq!(v["Loss/G/loss"]["std"], 1.0);
        assert!(c.mean("Loss/G/loss").is_none());
    }
}
