import XPURunCLI

RunCommand.main()
