"""posevid.pose"""
