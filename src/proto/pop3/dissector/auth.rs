//! The end of a login: a SASL exchange finished into its credential, APOP's challenge.

use super::*;

impl Pop3Dissector {
    pub(super) fn finish_auth_if_complete(&mut self, rec: &mut SessionRecord) {
        if let Some(flow) = self.auth.take_if(|f| f.complete()) {
            self.finish_auth(flow, rec);
        }
    }

    pub(super) fn finish_auth(&mut self, flow: AuthFlow, rec: &mut SessionRecord) {
        let AuthFlow {
            mut exchange,
            cred,
            ts,
            queued,
            verdict,
            ..
        } = flow;
        for challenge in queued {
            exchange.server_challenge(&challenge);
        }
        let problems = exchange.problems().to_vec();
        let credential = exchange.finish(verdict);
        if let Some(slot) = rec.credentials.get_mut(cred) {
            *slot = credential;
        }
        for problem in problems {
            rec.anomaly(ts, Some(Direction::Client), "sasl_malformed", problem);
        }
    }

    pub(super) fn fill_apop_challenge(&mut self, cred: usize, rec: &mut SessionRecord) {
        let stamp = rec.pop3.as_ref().and_then(|s| s.apop_timestamp.clone());
        let Some(c) = rec.credentials.get_mut(cred) else {
            return;
        };
        if c.details.challenge.is_some() {
            return;
        }
        match stamp {
            Some(stamp) => c.details.challenge = Some(stamp),
            None => {
                let ts = c.ts;
                rec.anomaly(
                    ts,
                    Some(Direction::Client),
                    "apop_without_timestamp",
                    "APOP used but no greeting with a <timestamp> was captured",
                );
            }
        }
    }
}
