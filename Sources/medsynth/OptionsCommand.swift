import ArgumentParser
import Foundation

/// A command whose options live in a `ParsableArguments` of the CommandOptions library (where
/// tests reach them): `command.epochs` reads `command.options.epochs`.
@dynamicMemberLookup
protocol OptionsCommand {
    associatedtype Options: ParsableArguments
    var options: Options { get }
}

extension OptionsCommand {
    subscript<T>(dynamicMember keyPath: KeyPath<Options, T>) -> T { options[keyPath: keyPath] }
}

/// The command line without the program (a worker's arguments are built from it).
var commandArguments: [String] { Array(CommandLine.arguments.dropFirst()) }
