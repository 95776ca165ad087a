//! nvinfer's `classifier-async-mode`: a secondary classifier of tracked objects that does not hold
//! buffers back. The network inputs are written on the streaming thread (the frames are mapped
//! only there), the model runs on a worker thread with an engine of its own (a fork of the
//! element's), and the results go to the object history, so the object's later frames carry
//! them.

use std::sync::mpsc;
use std::thread::JoinHandle;

use nvtl_core::engine::{Engine, EngineError, FillInput, InferResult, StageTimes, Target};
use nvtl_core::preprocess::{PreprocessParams, Transform};
use nvtl_core::ClassifierOutput;

use super::history::TrackedObject;

/// One object's network input, written on the streaming thread.
struct Request {
    object: TrackedObject,
    target: Target,
    input: Vec<f32>,
    transform: Transform,
}

/// The classifications of one submitted batch of objects, or why the model failed on it.
pub(super) type Outcome = Result<Vec<(TrackedObject, ClassifierOutput)>, EngineError>;

pub(super) struct AsyncClassifier {
    requests: Option<mpsc::Sender<Vec<Request>>>,
    outcomes: mpsc::Receiver<Outcome>,
    worker: Option<JoinHandle<()>>,
}

impl AsyncClassifier {
    /// Starts the worker on `engine`. After each batch it sends the outcome, then calls
    /// `on_inferred` with the stage times the batch took.
    pub(super) fn start(
        mut engine: Engine,
        on_inferred: impl Fn(StageTimes) + Send + 'static,
    ) -> std::io::Result<AsyncClassifier> {
        let (requests, requests_rx) = mpsc::channel::<Vec<Request>>();
        let (outcomes_tx, outcomes) = mpsc::channel::<Outcome>();
        let worker = std::thread::Builder::new()
            .name("nvtlinfer-async".into())
            .spawn(move || {
                for batch in requests_rx {
                    let before = engine.times;
                    let targets: Vec<Target> = batch.iter().map(|r| r.target).collect();
                    let outcome = engine
                        .infer_prepared(&targets, &mut |target, _params, out| {
                            // Each request's target names the request, not a frame.
                            let request = &batch[target.frame];
                            out.copy_from_slice(&request.input);
                            Ok(request.transform)
                        })
                        .map(|results| {
                            batch
                                .iter()
                                .zip(results)
                                .map(|(request, result)| {
                                    let output = match result {
                                        InferResult::Classification(output) => output,
                                        _ => ClassifierOutput::default(),
                                    };
                                    (request.object, output)
                                })
                                .collect()
                        });
                    if outcomes_tx.send(outcome).is_err() {
                        break;
                    }
                    on_inferred(engine.times.since(&before));
                }
            })?;
        Ok(AsyncClassifier {
            requests: Some(requests),
            outcomes,
            worker: Some(worker),
        })
    }

    /// Writes the network input of each `(object, target)` with `fill` and queues them for the
    /// worker, as one batch.
    pub(super) fn submit(
        &self,
        objects: Vec<(TrackedObject, Target)>,
        params: &PreprocessParams,
        fill: &mut FillInput<'_>,
    ) -> Result<(), EngineError> {
        let mut batch = Vec::with_capacity(objects.len());
        for (index, (object, target)) in objects.into_iter().enumerate() {
            let mut input = vec![0.0; params.tensor_len()];
            let transform = fill(&target, params, &mut input)?;
            batch.push(Request {
                object,
                target: Target {
                    frame: index,
                    ..target
                },
                input,
                transform,
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(requests) = &self.requests {
            // The worker only stops when this sender is dropped or its outcomes are no longer
            // received, both of which end this classifier first.
            let _ = requests.send(batch);
        }
        Ok(())
    }

    /// The outcomes that came back since the last call.
    pub(super) fn finished(&self) -> Vec<Outcome> {
        self.outcomes.try_iter().collect()
    }
}

impl Drop for AsyncClassifier {
    fn drop(&mut self) {
        // Ends the worker's loop after the batch it is on.
        self.requests = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
