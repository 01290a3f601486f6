//! The registry's machinery: [`models!`] turns one line per model into the [`Model`](super::Model)
//! enum and everything that dispatches on it (see the module header of `periph` for how to add
//! a model).

/// Generates, from the registry's one line per model (`Variant(module::Type) = "name";`),
/// the model's module and re-export, the [`Model`] enum, [`Model::KNOWN`],
/// [`Model::from_board`], the [`Device`] dispatch of `Model` (a `match`, no trait objects) and
/// the [`Listed`] look-ups behind [`Model::get`].
macro_rules! models {
    (
        $( $(#[$doc:meta])* $Var:ident($module:ident::$Ty:ident) = $name:literal; )*
        $( _ = $stand_in:literal, irqs = $stand_in_irqs:literal; )*
    ) => {
        $(
            pub mod $module;
            pub use $module::$Ty;
        )*

        /// One peripheral model of a board, by kind. Plain data: a snapshot is a clone.
        // The flash controller (its row buffer and a row in flight) is the large one; a board has
        // a few dozen models, so boxing it would save little.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub enum Model {
            $( $(#[$doc])* $Var($Ty), )*
        }

        impl Model {
            /// The model names a board file may use, with the number of interrupt outputs of each.
            pub const KNOWN: &'static [(&'static str, usize)] = &[
                $( ($name, <$Ty as FromBoard>::IRQ_OUTPUTS), )*
                $( ($stand_in, $stand_in_irqs), )*
            ];

            /// Builds the model a board file names. `index` numbers the instances of one model on
            /// the board (UART n tags its output with `OutputSource::Uart(n)`).
            pub fn from_board(
                p: &twinbed_board::Peripheral,
                index: u8,
                board: &twinbed_board::Board,
            ) -> Result<Model, PeriphError> {
                let Some(&(_, outputs)) = Self::KNOWN.iter().find(|(m, _)| *m == p.model) else {
                    return Err(PeriphError::UnknownModel {
                        name: p.name.clone(),
                        model: p.model.clone(),
                        known: Self::KNOWN.iter().map(|(m, _)| *m).collect::<Vec<_>>().join(", "),
                    });
                };
                if p.irqs.len() > outputs {
                    return Err(PeriphError::TooManyIrqs {
                        name: p.name.clone(),
                        model: p.model.clone(),
                        outputs,
                        given: p.irqs.len(),
                    });
                }
                let irqs = IrqOutputs::new(&p.irqs);
                Ok(match p.model.as_str() {
                    $( $name => Model::$Var(<$Ty as FromBoard>::from_board(p, index, irqs, board)?), )*
                    other => Model::Unimplemented(Unimplemented::stand_in(&p.name, p.window(), other)),
                })
            }
        }

        $(
            impl Listed for $Ty {
                fn of(m: &Model) -> Option<&Self> {
                    match m {
                        Model::$Var(d) => Some(d),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }

                fn of_mut(m: &mut Model) -> Option<&mut Self> {
                    match m {
                        Model::$Var(d) => Some(d),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*

        impl Device for Model {
            fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
                match self { $( Model::$Var(d) => d.read(offset, size, ctx), )* }
            }

            fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
                match self { $( Model::$Var(d) => d.write(offset, size, value, ctx), )* }
            }

            fn advance(&mut self, ctx: &mut Ctx<'_>) {
                match self { $( Model::$Var(d) => d.advance(ctx), )* }
            }

            fn next_deadline(&self) -> Option<u64> {
                match self { $( Model::$Var(d) => d.next_deadline(), )* }
            }

            fn reset(&mut self) {
                match self { $( Model::$Var(d) => d.reset(), )* }
            }

            fn rails(&self, name: &str, power: &twinbed_board::Power) -> Vec<RailSpec> {
                match self { $( Model::$Var(d) => d.rails(name, power), )* }
            }

            fn rail_state(&self, k: usize, rail: &RailView) -> RailState {
                match self { $( Model::$Var(d) => d.rail_state(k, rail), )* }
            }

            fn flash_region(&self) -> Option<(u32, u32)> {
                match self { $( Model::$Var(d) => d.flash_region(), )* }
            }

            fn flash_ops(&self) -> u32 {
                match self { $( Model::$Var(d) => d.flash_ops(), )* }
            }

            fn flash_controller(&mut self) -> Option<&mut dyn FlashController> {
                match self { $( Model::$Var(d) => d.flash_controller(), )* }
            }

            fn serial_port(&self) -> Option<u8> {
                match self { $( Model::$Var(d) => d.serial_port(), )* }
            }

            fn serial_rx(&mut self, byte: u8, ctx: &mut Ctx<'_>) {
                match self { $( Model::$Var(d) => d.serial_rx(byte, ctx), )* }
            }

            fn senses_battery(&self) -> bool {
                match self { $( Model::$Var(d) => d.senses_battery(), )* }
            }

            fn observe_battery(&mut self, reading: GaugeReading) {
                match self { $( Model::$Var(d) => d.observe_battery(reading), )* }
            }

            fn set_temperature(&mut self, device: &str, milli_c: i32) -> bool {
                match self { $( Model::$Var(d) => d.set_temperature(device, milli_c), )* }
            }
        }
    };
}
