"""posevid.data"""
