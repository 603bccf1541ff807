//! The molecular-dynamics driver: a state, a force field, an integrator and a Verlet list,
//! stepped together and observed every few steps.

use crate::error::MdError;
use crate::force_field::{checked_cutoff, evaluate_checked, Evaluation, ForceField};
use crate::integrators::{kick, Integrator};
use crate::neighbors::VerletList;
use crate::state::State;
use crate::thermo::Thermo;

/// What an observer asks the run to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this observation (e.g. on Ctrl-C, or after an output error the observer
    /// keeps for its caller).
    Stop,
}

/// What an observer of [`Dynamics::run`] sees: the summary, the state and its evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Energies, temperature and pressure at this step.
    pub thermo: Thermo,
    /// The state after this step.
    pub state: &'a State,
    /// The force field's evaluation of that state.
    pub evaluation: &'a Evaluation,
}

/// How a [`Dynamics::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    /// The steps this run took.
    pub steps: u64,
    /// Whether the observer stopped it before all steps were taken.
    pub stopped: bool,
}

/// Molecular dynamics: a [`State`] moved by an [`Integrator`] under a [`ForceField`], with
/// a [`VerletList`] for the neighbours.
///
/// The state always comes with the evaluation of its current positions (made at
/// construction and after every step), so the first half kick of a step needs no extra
/// evaluation. If a step fails (the force field errs or returns non-finite values), the error
/// names the step and the state is left part-way through it: positions advanced, velocities
/// half kicked. It is meant for inspection, not for continuing.
pub struct Dynamics<F, I> {
    state: State,
    force_field: F,
    integrator: I,
    neighbors: VerletList,
    evaluation: Evaluation,
    step: u64,
    time_fs: f64,
}

impl<F: ForceField, I: Integrator> Dynamics<F, I> {
    /// Dynamics of `state` (validated here), with a Verlet list of the force field's cutoff
    /// plus `skin` (A); evaluates the starting structure (step 0).
    ///
    /// # Errors
    /// An invalid state, cutoff or skin; the neighbour search or the force field failing on
    /// the starting structure.
    pub fn new(state: State, force_field: F, integrator: I, skin: f64) -> Result<Self, MdError> {
        state.validate()?;
        let mut state = state;
        let mut force_field = force_field;
        let mut neighbors = VerletList::new(checked_cutoff(&force_field)?, skin)?;
        neighbors
            .update(&mut state)
            .map_err(|source| MdError::Neighbors { step: 0, source })?;
        let evaluation = evaluate_checked(&mut force_field, &state, neighbors.list(), 0)?;
        Ok(Self {
            state,
            force_field,
            integrator,
            neighbors,
            evaluation,
            step: 0,
            time_fs: 0.0,
        })
    }

    /// One step: half kick, the integrator's drift, neighbour update, evaluation, half kick.
    ///
    /// # Errors
    /// The neighbour search or the force field failing, or a non-finite evaluation; see the
    /// type's documentation for the state left behind.
    pub fn step(&mut self) -> Result<(), MdError> {
        let step = self.step + 1;
        let dt = self.integrator.timestep();
        kick(&mut self.state, &self.evaluation.forces, 0.5 * dt);
        self.integrator.drift(&mut self.state);
        self.neighbors
            .update(&mut self.state)
            .map_err(|source| MdError::Neighbors { step, source })?;
        self.evaluation = evaluate_checked(
            &mut self.force_field,
            &self.state,
            self.neighbors.list(),
            step,
        )?;
        kick(&mut self.state, &self.evaluation.forces, 0.5 * dt);
        self.step = step;
        self.time_fs += dt;
        Ok(())
    }

    /// Takes up to `steps` steps, calling `observer` after every step whose number is a
    /// multiple of `every` (and once before the first step, if no step has been taken yet);
    /// the observer may stop the run.
    ///
    /// ```
    /// # use md::{Control, Dynamics, Evaluation, ForceField, ForceFieldError, NeighborList,
    /// #     State, VelocityVerlet};
    /// # struct Free;
    /// # impl ForceField for Free {
    /// #     fn cutoff(&self) -> f64 { 1.0 }
    /// #     fn evaluate(&mut self, s: &State, _: &NeighborList) -> Result<Evaluation, ForceFieldError> {
    /// #         Ok(Evaluation { energy: 0.0, forces: vec![[0.0; 3]; s.atom_count()], stress: None })
    /// #     }
    /// # }
    /// let state = State::new(vec![1], vec![[0.0; 3]])?.with_velocities(vec![[0.01, 0.0, 0.0]])?;
    /// let mut md = Dynamics::new(state, Free, VelocityVerlet::new(1.0)?, 0.5)?;
    /// let mut seen = Vec::new();
    /// let outcome = md.run(100, 10, |snapshot| {
    ///     seen.push(snapshot.thermo.step);
    ///     if snapshot.thermo.step == 30 { Control::Stop } else { Control::Continue }
    /// })?;
    /// assert_eq!(seen, [0, 10, 20, 30]);
    /// assert_eq!((outcome.steps, outcome.stopped), (30, true));
    /// assert!((md.state().positions()[0][0] - 0.3).abs() < 1e-12);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `every == 0`, or a failing step ([`step`](Self::step)).
    pub fn run(
        &mut self,
        steps: u64,
        every: u64,
        mut observer: impl FnMut(&Snapshot<'_>) -> Control,
    ) -> Result<RunOutcome, MdError> {
        if every == 0 {
            return Err(MdError::InvalidParameter {
                name: "the observation interval (steps)",
                requirement: "at least 1",
                value: 0.0,
            });
        }
        if self.step == 0 && observer(&self.snapshot()) == Control::Stop {
            return Ok(RunOutcome {
                steps: 0,
                stopped: true,
            });
        }
        for taken in 1..=steps {
            self.step()?;
            if self.step.is_multiple_of(every) && observer(&self.snapshot()) == Control::Stop {
                return Ok(RunOutcome {
                    steps: taken,
                    stopped: taken < steps,
                });
            }
        }
        Ok(RunOutcome {
            steps,
            stopped: false,
        })
    }

    /// The summary of the current step.
    pub fn thermo(&self) -> Thermo {
        Thermo::measure(
            self.step,
            self.time_fs,
            &self.state,
            &self.evaluation,
            self.integrator.conserves_momentum(),
        )
    }

    fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            thermo: self.thermo(),
            state: &self.state,
            evaluation: &self.evaluation,
        }
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The evaluation of the current state.
    pub fn evaluation(&self) -> &Evaluation {
        &self.evaluation
    }

    /// The steps taken since construction.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The simulated time since construction, in fs.
    pub fn time_fs(&self) -> f64 {
        self.time_fs
    }

    /// The neighbour list (for its [`rebuilds`](VerletList::rebuilds) count).
    pub fn neighbors(&self) -> &VerletList {
        &self.neighbors
    }

    /// The integrator.
    pub fn integrator(&self) -> &I {
        &self.integrator
    }

    /// The integrator, to change its parameters between steps (e.g. a Langevin
    /// temperature); a new time step applies from the next step.
    pub fn integrator_mut(&mut self) -> &mut I {
        &mut self.integrator
    }

    /// The force field.
    pub fn force_field(&self) -> &F {
        &self.force_field
    }

    /// The final state, giving up the rest.
    pub fn into_state(self) -> State {
        self.state
    }
}

#[cfg(test)]
mod tests;
