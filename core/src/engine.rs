//! nvtlinfer's inference work without GStreamer, shared with the trainer: a resolved config and
//! a loaded model turn frames (or objects inside frames) into detections, classifier
//! attributes or segmentation maps in frame pixels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{self, BackendError, BackendKind, ModelSpec, Plan, Session};
use crate::cluster::{cluster, detection_kept, top_k_by};
use crate::config::{ClusterMode, InferConfig, ModelColorFormat, NetworkType};
use crate::decode::custom_lib::{
    CustomBboxParser, CustomClassifierParser, CustomInstanceMaskParser, ParseParams,
};
use crate::decode::{self, DecodeContext, Decoded, Parser};
use crate::model::{Labels, LabelsError};
use crate::preprocess::{self, FrameView, PreprocessError, PreprocessParams, Rect, Transform};
use crate::{
    BBox, ClassifierAttribute, ClassifierOutput, Detection, InstanceMask, SegmentationMap, Tensor,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("config {config}: {reason}")]
    Config { config: String, reason: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Labels(#[from] LabelsError),
    #[error("model {model} does not fit parser '{parser}': {reason}")]
    Outputs {
        model: String,
        parser: Parser,
        reason: String,
    },
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    #[error("decoding the outputs of {model} failed: {reason}")]
    Decode { model: String, reason: String },
    #[error("GPU pre-processing failed: {0}")]
    GpuPreprocess(String),
    #[error("an inference target names frame {frame} of {frames} frames")]
    NoSuchFrame { frame: usize, frames: usize },
}

/// A parser of the config's custom-lib-path.
enum CustomParser {
    Bbox(CustomBboxParser),
    InstanceMask(CustomInstanceMaskParser),
    Classifier(CustomClassifierParser),
}

/// One inference target: `region` of frame `frame` (an index into the caller's frames), a
/// frame of `size` (width, height) pixels. Targets of several frames share batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub frame: usize,
    pub region: Rect,
    pub size: (usize, usize),
}

impl Target {
    /// `regions` of one `frame`.
    pub fn of_frame(frame: usize, size: (usize, usize), regions: &[Rect]) -> Vec<Target> {
        regions
            .iter()
            .map(|&region| Target {
                frame,
                region,
                size,
            })
            .collect()
    }
}

/// Writes one target's network input (see [`Engine::infer_prepared`]).
pub type FillInput<'a> =
    dyn FnMut(&Target, &PreprocessParams, &mut [f32]) -> Result<Transform, EngineError> + 'a;

/// Writes one target's network input into GPU memory (see [`Engine::infer_on_device`]): the
/// target, the parameters, the stream to queue the work on, and the device address of the
/// target's `params.tensor_len()` f32.
#[cfg(feature = "cuda")]
pub type FillDeviceInput<'a> = dyn FnMut(
        &Target,
        &PreprocessParams,
        &cudarc::driver::CudaStream,
        u64,
    ) -> Result<Transform, EngineError>
    + 'a;

/// How a batch's network input gets written.
enum Fill<'f, 'a> {
    Host(&'f mut FillInput<'a>),
    #[cfg(feature = "cuda")]
    Device(&'f mut FillDeviceInput<'a>),
}

/// A detection in frame pixels, with its label.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameObject {
    pub class_id: u32,
    pub confidence: f32,
    pub bbox: BBox,
    pub label: Option<String>,
    /// The instance mask (network-type=3 with output-instance-mask).
    pub mask: Option<InstanceMask>,
}

/// What one inference produced for one frame or one object.
#[derive(Clone, Debug, PartialEq)]
pub enum InferResult {
    Objects(Vec<FrameObject>),
    Classification(ClassifierOutput),
    Segmentation(SegmentationMap),
    /// network-type=100: no decoding, raw tensors only.
    Raw,
}

/// Accumulated time per stage, for the `stats` property and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    pub inferences: u64,
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
}

impl StageTimes {
    /// What was added to these totals since they were `earlier`.
    pub fn since(&self, earlier: &StageTimes) -> StageTimes {
        StageTimes {
            inferences: self.inferences - earlier.inferences,
            preprocess: self.preprocess - earlier.preprocess,
            inference: self.inference - earlier.inference,
            postprocess: self.postprocess - earlier.postprocess,
        }
    }

    pub fn add(&mut self, more: &StageTimes) {
        self.inferences += more.inferences;
        self.preprocess += more.preprocess;
        self.inference += more.inference;
        self.postprocess += more.postprocess;
    }
}

/// A loaded model with everything needed to run it as the config says.
pub struct Engine {
    pub config: InferConfig,
    plan: Arc<dyn Plan>,
    session: Box<dyn Session>,
    parser: Option<Parser>,
    /// nvinfer's custom-lib-path parser, used instead of `parser`, and what it is told.
    custom_parser: Option<Arc<(CustomParser, ParseParams)>>,
    labels: Option<Labels>,
    params: PreprocessParams,
    /// Batch slots of the model input (frames per call in primary mode, objects in secondary).
    batch: usize,
    input: Tensor,
    /// Indices (into the plan's outputs) of the outputs the decoder sees, in config order.
    decoded_outputs: Vec<usize>,
    pub times: StageTimes,
    /// With output-tensor-meta on: the raw outputs of each target of the last `infer_*` call,
    /// in target order, each its own batch item as a batch of one.
    pub target_outputs: Vec<Vec<Tensor>>,
}

impl Engine {
    /// Loads the model the config names on `backend` (with `threads` CPU threads, 0 = all).
    /// Returns the engine and warnings for the element to log (backend fallbacks, ignored keys).
    pub fn load(
        config: InferConfig,
        backend_kind: BackendKind,
        threads: usize,
    ) -> Result<(Engine, Vec<String>), EngineError> {
        let config_name = config
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(properties)".to_string());
        let config_error = |reason: String| EngineError::Config {
            config: config_name.clone(),
            reason,
        };
        let mut warnings = Vec::new();

        // A model-engine-file ending in .onnx is just the model; any other is a TensorRT engine
        // for the tensorrt backend, which still reads the ONNX model's inputs and outputs.
        let engine_file = config
            .model_engine_file
            .clone()
            .filter(|e| e.extension().is_none_or(|x| x != "onnx"));
        let onnx_path = match (&config.onnx_file, &config.model_engine_file) {
            (Some(onnx), _) => onnx.clone(),
            (None, Some(engine)) if engine_file.is_none() => engine.clone(),
            (None, Some(engine)) => {
                return Err(config_error(format!(
                    "model-engine-file {} is a TensorRT engine; set onnx-file too (the {} backend \
                     runs the ONNX model, and the tensorrt backend takes the engine's inputs and outputs from it)",
                    engine.display(),
                    backend_kind
                )))
            }
            (None, None) => {
                return Err(config_error("no model: set onnx-file (or model-engine-file)".into()))
            }
        };

        let parser = match config.parser {
            Some(parser) => Some(parser),
            None if config.network_type == NetworkType::InstanceSegmentation
                && config.parse_bbox_instance_mask_func_name.is_none() =>
            {
                return Err(config_error(
                    "network-type=3 (instance segmentation) needs parse-bbox-instance-mask-func-name \
                     and custom-lib-path: nvinfer has no built-in instance-mask parser either"
                        .into(),
                ))
            }
            None => Parser::default_for(config.network_type),
        };
        // nvinfer's custom-lib-path + parse-bbox-func-name (detectors),
        // parse-bbox-instance-mask-func-name (instance segmentation) or
        // parse-classifier-func-name (classifiers): the library's parser instead of a built-in
        // one (an explicit `parser=` wins).
        let custom_function = match config.network_type {
            NetworkType::Detector => config
                .parse_bbox_func_name
                .as_deref()
                .map(|f| ("parse-bbox-func-name", f)),
            NetworkType::InstanceSegmentation => config
                .parse_bbox_instance_mask_func_name
                .as_deref()
                .map(|f| ("parse-bbox-instance-mask-func-name", f)),
            NetworkType::Classifier => config
                .parse_classifier_func_name
                .as_deref()
                .map(|f| ("parse-classifier-func-name", f)),
            _ => None,
        };
        let custom_parser = match (custom_function, &config.custom_lib_path) {
            (Some((key, function)), _) if config.parser.is_some() => {
                warnings.push(format!(
                    "parser={} decodes the outputs; {key}={function} is not used",
                    parser.map(|p| p.to_string()).unwrap_or_default()
                ));
                None
            }
            (Some((_, function)), Some(library)) => Some(
                match config.network_type {
                    NetworkType::Detector => {
                        CustomBboxParser::load(library, function).map(CustomParser::Bbox)
                    }
                    NetworkType::InstanceSegmentation => {
                        CustomInstanceMaskParser::load(library, function)
                            .map(CustomParser::InstanceMask)
                    }
                    _ => CustomClassifierParser::load(library, function)
                        .map(CustomParser::Classifier),
                }
                .map_err(|e| config_error(e.to_string()))?,
            ),
            (Some((key, function)), None) => {
                return Err(config_error(format!(
                    "{key}={function} needs custom-lib-path, the library that has it (or \
                     choose a built-in decoder with parser=)"
                )))
            }
            (None, _) => None,
        };
        if matches!(custom_parser, Some(CustomParser::InstanceMask(_)))
            && config.cluster_mode != ClusterMode::None
        {
            return Err(config_error(format!(
                "network-type=3 (instance segmentation) needs cluster-mode=4 (no clustering), the \
                 only mode nvinfer allows for instance masks; this config has cluster-mode={}",
                config.cluster_mode as i32
            )));
        }
        let parser = if custom_parser.is_some() {
            None
        } else {
            parser
        };

        let secondary = config.process_mode == crate::config::ProcessMode::Secondary;
        let spec = ModelSpec {
            onnx_path: onnx_path.clone(),
            batch_size: if secondary {
                config.batch_size.max(1) as usize
            } else {
                1
            },
            infer_dims: config.infer_dims.map(|d| d.map(|v| v as usize)),
            input_order: config.network_input_order,
            threads,
            gpu_id: config.gpu_id,
            precision: config.network_mode.into(),
            int8_calib_file: config.int8_calib_file.clone(),
            engine_file: engine_file.clone(),
        };
        let (plan, fallbacks) = backend::load_with_fallback(backend_kind, &spec)?;
        warnings.extend(fallbacks);
        warnings.extend(plan.notes());
        if let Some(engine) = engine_file.filter(|_| plan.backend() != BackendKind::TensorRt) {
            warnings.push(format!(
                "model-engine-file {} is only used by the tensorrt backend; running {} on {}",
                engine.display(),
                onnx_path.display(),
                plan.backend()
            ));
        }
        let model_name = onnx_path.display().to_string();

        let input = plan.input().clone();
        let (channels, height, width) =
            input.image_dims(config.network_input_order).ok_or_else(|| {
                config_error(format!(
                    "input '{}' of {} has shape {:?}, which is not a {:?} image batch (check network-input-order)",
                    input.name, model_name, input.shape, config.network_input_order
                ))
            })?;
        let wanted_channels = if config.model_color_format == ModelColorFormat::Gray {
            1
        } else {
            3
        };
        if channels != wanted_channels {
            return Err(config_error(format!(
                "model-color-format={} needs {wanted_channels} input channels, but {} has {channels} (input shape {:?})",
                config.model_color_format as i32, model_name, input.shape
            )));
        }
        let batch = input.shape[0];
        if secondary && batch < config.batch_size as usize {
            warnings.push(format!(
                "batch-size={} but {} has a fixed batch of {batch}; running {batch} objects per call",
                config.batch_size, model_name
            ));
        }

        let outputs = plan.outputs();
        let decoded_outputs: Vec<usize> = if config.output_blob_names.is_empty() {
            (0..outputs.len()).collect()
        } else {
            config
                .output_blob_names
                .iter()
                .map(|name| {
                    outputs.iter().position(|o| &o.name == name).ok_or_else(|| {
                        config_error(format!(
                            "output-blob-names names '{name}', but {} has outputs {}",
                            model_name,
                            outputs
                                .iter()
                                .map(|o| o.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        };

        let labels = config
            .labelfile_path
            .as_deref()
            .map(Labels::from_file)
            .transpose()?;
        let num_classes = if config.num_detected_classes > 0 {
            config.num_detected_classes as usize
        } else {
            labels.as_ref().map(Labels::len).unwrap_or(0)
        };
        if let Some(parser) = parser {
            let shapes: Vec<(String, Vec<usize>)> = decoded_outputs
                .iter()
                .map(|&i| (outputs[i].name.clone(), outputs[i].shape.clone()))
                .collect();
            decode::check_outputs(parser, &shapes, num_classes).map_err(|e| {
                EngineError::Outputs {
                    model: model_name.clone(),
                    parser,
                    reason: e.to_string(),
                }
            })?;
        }

        let params = PreprocessParams::from_config(&config, width, height);
        // What a custom parser is told besides the outputs, the same on every call.
        let custom_parser = custom_parser.map(|custom| {
            let thresholds = |pick: fn(&crate::config::ClassAttrs) -> f32| {
                (0..num_classes as u32)
                    .map(|c| pick(config.class_attrs.get(c)))
                    .collect()
            };
            let parse_params = ParseParams {
                network: params.network_info(),
                num_classes: num_classes as u32,
                precluster_thresholds: thresholds(|a| a.pre_cluster_threshold),
                postcluster_thresholds: thresholds(|a| a.post_cluster_threshold),
            };
            Arc::new((custom, parse_params))
        });
        let session = plan.new_session()?;
        let input_tensor = Tensor::zeros(input.name.clone(), input.shape.clone());
        Ok((
            Engine {
                config,
                plan,
                session,
                parser,
                custom_parser,
                labels,
                params,
                batch,
                input: input_tensor,
                decoded_outputs,
                times: StageTimes::default(),
                target_outputs: Vec::new(),
            },
            warnings,
        ))
    }

    /// A second engine on the same loaded model, with a session of its own, to run on another
    /// thread beside this one: nothing is read, parsed or optimised again.
    pub fn fork(&self) -> Result<Engine, EngineError> {
        Ok(Engine {
            config: self.config.clone(),
            plan: Arc::clone(&self.plan),
            session: self.plan.new_session()?,
            parser: self.parser,
            custom_parser: self.custom_parser.clone(),
            labels: self.labels.clone(),
            params: self.params.clone(),
            batch: self.batch,
            input: self.input.clone(),
            decoded_outputs: self.decoded_outputs.clone(),
            times: StageTimes::default(),
            target_outputs: Vec::new(),
        })
    }

    /// The pre-processing of every target: network size, colours, scaling.
    pub fn params(&self) -> &PreprocessParams {
        &self.params
    }

    pub fn plan(&self) -> &Arc<dyn Plan> {
        &self.plan
    }

    pub fn parser(&self) -> Option<Parser> {
        self.parser
    }

    pub fn labels(&self) -> Option<&Labels> {
        self.labels.as_ref()
    }

    /// Objects (or frames) per inference call.
    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn network_size(&self) -> (usize, usize) {
        (self.params.network_width, self.params.network_height)
    }

    /// Runs the model on each region (the whole frame in primary mode, objects in secondary
    /// mode): one result per region, in order,
    /// `batch()` regions per call.
    pub fn infer_regions(
        &mut self,
        frame: &FrameView,
        regions: &[Rect],
    ) -> Result<Vec<InferResult>, EngineError> {
        let targets = Target::of_frame(0, (frame.width, frame.height), regions);
        self.infer_frames(std::slice::from_ref(frame), &targets)
    }

    /// [`Engine::infer_regions`] over several frames (a DeepStream batch): targets of different
    /// frames fill the same batch, as nvinfer batches them.
    pub fn infer_frames(
        &mut self,
        frames: &[FrameView],
        targets: &[Target],
    ) -> Result<Vec<InferResult>, EngineError> {
        self.infer_prepared(targets, &mut |target, params, out| {
            let frame = frames.get(target.frame).ok_or(EngineError::NoSuchFrame {
                frame: target.frame,
                frames: frames.len(),
            })?;
            Ok(preprocess::preprocess(frame, target.region, params, out)?)
        })
    }

    /// [`Engine::infer_frames`] for frames the engine does not read itself (ones in GPU
    /// memory): `fill` writes a target's network input into `out` with `params` (the contract of
    /// [`preprocess::preprocess`]) and returns its transform.
    pub fn infer_prepared(
        &mut self,
        targets: &[Target],
        fill: &mut FillInput<'_>,
    ) -> Result<Vec<InferResult>, EngineError> {
        self.infer_filled(targets, Fill::Host(fill))
    }

    /// The GPU whose memory the backend can take its input from (the cuda backend), for
    /// [`Engine::infer_on_device`].
    #[cfg(feature = "cuda")]
    pub fn device_input_gpu(&self) -> Option<usize> {
        self.session.device_input_gpu()
    }

    /// [`Engine::infer_prepared`] with the network input written straight into the backend's
    /// GPU buffer: `fill` queues a region's pre-processing, and the input never visits the host.
    /// Only for backends with a [`Engine::device_input_gpu`].
    #[cfg(feature = "cuda")]
    pub fn infer_on_device(
        &mut self,
        targets: &[Target],
        fill: &mut FillDeviceInput<'_>,
    ) -> Result<Vec<InferResult>, EngineError> {
        self.infer_filled(targets, Fill::Device(fill))
    }

    fn infer_filled(
        &mut self,
        targets: &[Target],
        mut fill: Fill<'_, '_>,
    ) -> Result<Vec<InferResult>, EngineError> {
        let mut results = Vec::with_capacity(targets.len());
        self.target_outputs.clear();
        let slot_len = self.params.tensor_len();
        for chunk in targets.chunks(self.batch) {
            let started = Instant::now();
            let mut transforms = Vec::with_capacity(chunk.len());
            let preprocessed;
            let outputs = match &mut fill {
                Fill::Host(fill) => {
                    for (slot, target) in chunk.iter().enumerate() {
                        let out = &mut self.input.data[slot * slot_len..(slot + 1) * slot_len];
                        transforms.push(fill(target, &self.params, out)?);
                    }
                    preprocessed = Instant::now();
                    self.session.run(&self.input)?
                }
                #[cfg(feature = "cuda")]
                Fill::Device(fill) => {
                    let input = self.session.device_input()?;
                    for (slot, target) in chunk.iter().enumerate() {
                        let ptr = input.slot(slot, slot_len).ok_or_else(|| {
                            EngineError::GpuPreprocess(format!(
                                "the model's device input holds {} values, batch slot {slot} \
                                 needs {}",
                                input.len,
                                (slot + 1) * slot_len
                            ))
                        })?;
                        transforms.push(fill(target, &self.params, &input.stream, ptr)?);
                    }
                    input.zero_from(chunk.len() * slot_len)?;
                    // Queued, not run: the GPU's pre-processing time is counted as inference.
                    preprocessed = Instant::now();
                    self.session.run_device_input()?
                }
            };
            let inferred = Instant::now();
            // The decoder's outputs in config order: borrowed when that is the model's own
            // order (the usual case), else gathered once per call, not once per batch item.
            let gathered: Vec<Tensor>;
            let selected: &[Tensor] = if self.decoded_outputs.iter().copied().eq(0..outputs.len()) {
                &outputs
            } else {
                gathered = self
                    .decoded_outputs
                    .iter()
                    .map(|&i| outputs[i].clone())
                    .collect();
                &gathered
            };
            for (index, (transform, target)) in transforms.iter().zip(chunk).enumerate() {
                results.push(self.postprocess(selected, index, transform, target.size)?);
            }
            let done = Instant::now();
            self.times.inferences += 1;
            self.times.preprocess += preprocessed - started;
            self.times.inference += inferred - preprocessed;
            self.times.postprocess += done - inferred;
            if self.config.output_tensor_meta {
                self.target_outputs
                    .extend((0..chunk.len()).map(|index| batch_item(&outputs, index)));
            }
        }
        Ok(results)
    }

    /// `attributes` with the label file's label wherever they have none.
    fn labelled(&self, mut attributes: Vec<ClassifierAttribute>) -> Vec<ClassifierAttribute> {
        if let Some(labels) = &self.labels {
            for attribute in attributes.iter_mut().filter(|a| a.label.is_none()) {
                attribute.label = labels
                    .classifier_label(attribute.attribute_index, attribute.class_id)
                    .map(str::to_string);
            }
        }
        attributes
    }

    /// Decodes batch item `batch_index` of `selected` (the decoder's outputs, in config order).
    fn postprocess(
        &self,
        selected: &[Tensor],
        batch_index: usize,
        transform: &Transform,
        (width, height): (usize, usize),
    ) -> Result<InferResult, EngineError> {
        let config = &self.config;
        let num_classes = if config.num_detected_classes > 0 {
            config.num_detected_classes as usize
        } else {
            self.labels.as_ref().map(Labels::len).unwrap_or(0)
        };
        let decode_error = |reason: String| EngineError::Decode {
            model: self.plan.spec().onnx_path.display().to_string(),
            reason,
        };
        let decoded = match (self.custom_parser.as_deref(), self.parser) {
            (Some((CustomParser::Classifier(custom), parse_params)), _) => {
                let (attributes, description) = custom
                    .parse(
                        selected,
                        batch_index,
                        parse_params.network,
                        config.classifier_threshold,
                    )
                    .map_err(|e| decode_error(e.to_string()))?;
                // The parser's own labels and description win, as in nvinfer; the label file
                // names the attributes it left unlabelled.
                return Ok(InferResult::Classification(ClassifierOutput {
                    attributes: self.labelled(attributes),
                    description,
                }));
            }
            (Some((CustomParser::InstanceMask(custom), parse_params)), _) => {
                let masked = custom
                    .parse(selected, batch_index, parse_params)
                    .map_err(|e| decode_error(e.to_string()))?;
                return Ok(InferResult::Objects(self.instance_objects(
                    masked,
                    parse_params.num_classes,
                    transform,
                    (width, height),
                )));
            }
            (Some((CustomParser::Bbox(custom), parse_params)), _) => {
                let detections = custom
                    .parse(selected, batch_index, parse_params)
                    .map_err(|e| decode_error(e.to_string()))?;
                Decoded::Detections(detections)
            }
            (None, Some(parser)) => {
                let ctx = DecodeContext {
                    network_width: self.params.network_width,
                    network_height: self.params.network_height,
                    num_classes,
                    class_attrs: &config.class_attrs,
                    classifier_threshold: config.classifier_threshold,
                    segmentation_threshold: config.segmentation_threshold,
                };
                decode::decode(parser, selected, batch_index, &ctx)
                    .map_err(|e| decode_error(e.to_string()))?
            }
            (None, None) => return Ok(InferResult::Raw),
        };
        Ok(match decoded {
            Decoded::Detections(detections) => {
                // nvinfer clusters in network pixels, then filters in frame pixels.
                let objects = cluster(detections, config.cluster_mode, &config.class_attrs)
                    .into_iter()
                    .filter_map(|d| self.kept_in_frame(d, transform, (width, height)))
                    .map(|d| self.frame_object(d, None))
                    .collect();
                InferResult::Objects(objects)
            }
            Decoded::Attributes(attributes) => InferResult::Classification(
                ClassifierOutput::described_by_labels(self.labelled(attributes)),
            ),
            Decoded::Segmentation(map) => InferResult::Segmentation(map),
        })
    }

    fn frame_object(&self, d: Detection, mask: Option<InstanceMask>) -> FrameObject {
        FrameObject {
            label: self
                .labels
                .as_ref()
                .and_then(|l| l.detector_label(d.class_id))
                .map(str::to_string),
            class_id: d.class_id,
            confidence: d.confidence,
            bbox: d.bbox,
            mask,
        }
    }

    /// nvinfer's instance-segmentation post-processing of a parser's objects (in network
    /// pixels): classes beyond `num_classes` and objects below their class's
    /// pre-cluster-threshold dropped, top-k per class (no clustering: cluster-mode=4 is the only
    /// mode it allows), then as for detections, boxes mapped to the frame and the frame-pixel
    /// filters. Masks stay with their objects with output-instance-mask, carrying
    /// segmentation-threshold.
    fn instance_objects(
        &self,
        masked: Vec<(Detection, Option<InstanceMask>)>,
        num_classes: u32,
        transform: &Transform,
        (width, height): (usize, usize),
    ) -> Vec<FrameObject> {
        let config = &self.config;
        let mut per_class: BTreeMap<u32, Vec<(Detection, Option<InstanceMask>)>> = BTreeMap::new();
        for (d, mask) in masked {
            let attrs = config.class_attrs.get(d.class_id);
            if d.class_id < num_classes && d.confidence >= attrs.pre_cluster_threshold {
                per_class.entry(d.class_id).or_default().push((d, mask));
            }
        }
        per_class
            .into_iter()
            .flat_map(|(class_id, mut list)| {
                top_k_by(
                    &mut list,
                    config.class_attrs.get(class_id).topk,
                    |(d, _)| d.confidence,
                );
                list
            })
            .filter_map(|(d, mask)| {
                let d = self.kept_in_frame(d, transform, (width, height))?;
                let mask = mask
                    .filter(|_| config.output_instance_mask)
                    .map(|mask| InstanceMask {
                        threshold: config.segmentation_threshold,
                        ..mask
                    });
                Some(self.frame_object(d, mask))
            })
            .collect()
    }

    /// `d` (network pixels) mapped to the frame and clipped to it, if nvinfer keeps it there:
    /// at least a pixel wide and high, and through the frame-pixel filters (ROI offsets, size
    /// limits, filter-out-class-ids).
    fn kept_in_frame(
        &self,
        d: Detection,
        transform: &Transform,
        (width, height): (usize, usize),
    ) -> Option<Detection> {
        let (frame_width, frame_height) = (width as f32, height as f32);
        let d = Detection {
            bbox: transform
                .to_frame(d.bbox)
                .clipped(frame_width, frame_height),
            ..d
        };
        let config = &self.config;
        (d.bbox.width >= 1.0
            && d.bbox.height >= 1.0
            && detection_kept(
                &d,
                &config.class_attrs,
                frame_height,
                &config.filter_out_class_ids,
            ))
        .then_some(d)
    }
}

/// Item `index` of each output, as a batch of one (an output without that item, whole).
fn batch_item(outputs: &[Tensor], index: usize) -> Vec<Tensor> {
    outputs
        .iter()
        .map(|t| {
            if t.shape.first().is_some_and(|&n| index < n) {
                let shape = std::iter::once(1).chain(t.item_shape().iter().copied());
                Tensor::new(
                    t.name.clone(),
                    shape.collect(),
                    t.batch_item(index).to_vec(),
                )
            } else {
                t.clone()
            }
        })
        .collect()
}
